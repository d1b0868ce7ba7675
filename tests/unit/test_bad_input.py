"""Bad input of every kind ends in one line `file:line: field: why` and exit 2 — never a traceback,
never a hang, never a run that starts.

A corpus of broken drills and scenarios (built here from the shipped ones, so that each differs from
a valid file by one defect) goes through `hospital-drill validate`; a seeded fuzz test mutates every
shipped file and expects no traceback; the command line's own numbers and addresses are refused
before anything starts.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness import cli

ROOT = Path(__file__).resolve().parents[2]
DRILL = "drills/db-crash-failover.yaml"
SCENARIO = "scenarios/db-crash.yaml"
# file:line: field: why — the shape of an error a user can act on
LOCATED = re.compile(r"^hospital-drill: error: (?P<file>[^:]+):(?P<line>\d+): (?:(?P<field>[^: ]+): )?.+$")


@pytest.fixture
def tree(tmp_path) -> Path:
    """A writable copy of the shipped drills and scenarios (extends chains and all)."""
    for d in ("drills", "scenarios"):
        shutil.copytree(ROOT / d, tmp_path / d)
    return tmp_path


def _load(tree: Path, rel: str) -> dict:
    return yaml.safe_load((tree / rel).read_text(encoding="utf-8"))


def _dump(data: dict) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _validate(capsys, path: Path) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = cli.main(["validate", str(path)])
    err = capsys.readouterr().err
    return code, err.splitlines()


# --- the corpus ------------------------------------------------------------------------------------
# Each case: (id, how to break the copy → the file to validate, a pattern the one line must match).
# Raw-text cases break the YAML itself; the others change one field of a shipped file.

def _raw(text: str | bytes, rel: str = DRILL):
    def make(tree: Path) -> Path:
        path = tree / rel
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path
    return make


def _set(rel: str, *edits: tuple[tuple, object]):
    """Set (or with `...` delete) fields of a shipped file, by path."""
    def make(tree: Path) -> Path:
        data = _load(tree, rel)
        for path, value in edits:
            node = data
            for key in path[:-1]:
                node = node[key]
            if value is ...:
                del node[path[-1]]
            else:
                node[path[-1]] = value
        (tree / rel).write_text(_dump(data), encoding="utf-8")
        return tree / rel
    return make


def _with_file(rel: str, content: str | None, make_edit):
    """Create another file first (None: a FIFO), then apply an edit."""
    def make(tree: Path) -> Path:
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            os.mkfifo(path)
        else:
            path.write_text(content, encoding="utf-8")
        return make_edit(tree)
    return make


def _extends_chain(n: int):
    def make(tree: Path) -> Path:
        for i in range(n):
            (tree / "drills" / f"c{i}.yaml").write_text(f"extends: c{i + 1}.yaml\n", encoding="utf-8")
        (tree / "drills" / f"c{n}.yaml").write_text(
            f"extends: {Path(DRILL).name}\n", encoding="utf-8")
        return tree / "drills" / "c0.yaml"
    return make


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))

CORPUS = [
    # bounded parsing
    ("alias-bomb", _raw(BOMB), r"expands to more than"),
    ("recursive-alias", _raw("name: x\nrunbook: &r [1, *r]\n"), r":2: runbook.*recursive alias"),
    ("deep-list", _raw("name: " + "[" * 5000 + "]" * 5000 + "\n"), r"nested deeper than"),
    ("deep-map", _raw("a: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n"), r"nested deeper than"),
    ("huge-int", _raw("name: x\ntime_scale: " + "9" * 5000 + "\n"), r":2: time_scale: number longer"),
    ("oversized", _raw("name: x\n" + "# padding\n" * 120_000), r"larger than"),
    ("multi-document", _raw("name: x\n---\nname: y\n"), r"malformed YAML"),
    ("empty", _raw(""), r"empty document"),
    ("top-level-list", _raw("- a\n- b\n"), r":1: .*expected a mapping"),
    ("top-level-scalar", _raw("just words\n"), r":1: .*expected a mapping"),
    ("not-utf8", _raw(b"name: \xff\xfe\n"), r"not UTF-8"),
    ("unclosed-flow", _raw("name: x\nrunbook: [\n  - id: a\n"), r"malformed YAML"),
    ("tab-indent", _raw("name: x\nteams:\n\ttechnical: {}\n"), r":3: malformed YAML"),
    ("unknown-tag", _raw("name: !hospital x\n"), r":1: name: could not determine a constructor"),
    ("python-tag", _raw("name: !!python/object/apply:os.system [echo]\n"), r":1: (name: |malformed YAML: )could not determine a constructor"),
    ("bad-date", _raw("name: x\nwhen: 2024-13-45\n"), r":2: when: not a valid timestamp"),
    ("bad-merge", _raw("name: x\nstack:\n  <<: 5\n"), r"malformed YAML"),
    ("complex-key", _raw("name: x\n? [a, b]\n: 1\n"), r":2: a key must be a plain name"),
    ("control-char", _raw("name: x\nteams: \x07\n"), r":2: malformed YAML: character .* not allowed"),
    # duplicate keys: the last one must not silently win
    ("dup-top", _raw((ROOT / DRILL).read_text(encoding="utf-8") + "time_scale: 3600\n"),
     r":\d+: time_scale: duplicate key \(first at line \d+\)"),
    ("dup-nested", _raw("name: x\nstack:\n  remote_dr: true\n  remote_dr: false\n"),
     r":4: stack.remote_dr: duplicate key \(first at line 3\)"),
    # extends and scenario: paths that resolve safely
    ("extends-self", _set(DRILL, (("extends",), Path(DRILL).name)), r"extends: extends itself"),
    ("extends-cycle", _with_file("drills/other.yaml", f"extends: {Path(DRILL).name}\nname: other\n",
                                 _set(DRILL, (("extends",), "other.yaml"))), r"extends: extends cycle"),
    ("extends-passwd", _set(DRILL, (("extends",), "/etc/passwd")), r"extends: '/etc/passwd' is not a YAML"),
    ("extends-dir", _with_file("drills/dir.yaml/x", "", _set(DRILL, (("extends",), "dir.yaml"))),
     r"extends: not a regular file"),
    ("extends-fifo", _with_file("drills/pipe.yaml", None, _set(DRILL, (("extends",), "pipe.yaml"))),
     r"extends: not a regular file"),
    ("extends-number", _set(DRILL, (("extends",), 42)), r"extends: must be the path of a YAML file"),
    ("extends-list-file", _with_file("drills/list.yaml", "- a\n", _set(DRILL, (("extends",), "list.yaml"))),
     r"drill.*\.yaml:\d+: extends: not a drill or scenario"),
    ("extends-too-deep", _extends_chain(10), r"extends: more than 8 files deep"),
    ("scenario-passwd", _set(DRILL, (("scenario",), "/etc/passwd")), r"scenario: '/etc/passwd' is not a YAML"),
    ("scenario-symlink-passwd", _with_file("scenarios/x.txt", "root:x:0:0\n", lambda t: (
        os.symlink(t / "scenarios/x.txt", t / "scenarios/link.yaml"),
        _set(DRILL, (("scenario",), "../scenarios/link.yaml"))(t))[1]), r"scenario: .*not a YAML file"),
    ("scenario-is-drill", _set(DRILL, (("scenario",), "db-crash-failover-sync.yaml")),
     r"scenario: .*is not a scenario.*it is a drill"),
    ("scenario-nul", _set(DRILL, (("scenario",), "a\0.yaml")), r"scenario: a path cannot contain"),
    ("scenario-long-name", _set(DRILL, (("scenario",), "a" * 300 + ".yaml")), r"scenario: "),
    ("scenario-empty", _set(DRILL, (("scenario",), "")), r"scenario: must be the path"),
    ("scenario-fifo", _with_file("scenarios/pipe.yaml", None,
                                 _set(DRILL, (("scenario",), "../scenarios/pipe.yaml"))),
     r"scenario: not a regular file"),
    # names are slugs
    ("name-traversal", _set(DRILL, (("name",), "../../..")), r":\d+: name: '../../..' is not a name"),
    ("name-slash", _set(DRILL, (("name",), "a/b")), r"name: 'a/b' is not a name"),
    ("name-empty", _set(DRILL, (("name",), "")), r"name: '' is not a name"),
    ("name-long", _set(DRILL, (("name",), "x" * 500)), r"name: .* is not a name"),
    ("scenario-name", _set(SCENARIO, (("name",), "../x")), r"db-crash.yaml:\d+: name: '../x' is not a name"),
    ("step-id", _set(DRILL, (("runbook", 0, "id"), "../acks")), r"runbook.0.id: '../acks' is not a name"),
    ("target-id", _set(DRILL, (("targets", 0, "id"), "a b")), r"targets.0.id: 'a b' is not a name"),
    ("fault-id", _set(SCENARIO, (("faults", 0, "id"), "x/y")), r"faults.0.id: 'x/y' is not a name"),
    # finite numbers, everywhere
    ("time-scale-0", _set(DRILL, (("time_scale",), 0)), r"time_scale: Input should be greater than 0"),
    ("time-scale-neg", _set(DRILL, (("time_scale",), -1)), r"time_scale: Input should be greater than 0"),
    ("time-scale-huge", _set(DRILL, (("time_scale",), 1e12)), r"time_scale: Input should be less than"),
    ("time-scale-inf", _raw("name: x\ntime_scale: .inf\n"), r":2: time_scale: numbers must be finite"),
    ("time-scale-nan-str", _set(DRILL, (("time_scale",), "nan")), r"time_scale: Input should be a finite"),
    ("time-scale-1e309", _set(DRILL, (("time_scale",), "1e309")), r"time_scale: Input should be a finite"),
    ("within-inf", _raw((ROOT / DRILL).read_text(encoding="utf-8").replace("within: 1h", "within: .inf", 1)),
     r"targets.0.within: numbers must be finite"),
    ("within-1e309", _set(DRILL, (("targets", 0, "within"), "1e309")), r"targets.0.within: durations must be finite"),
    ("deadline-too-long", _set(DRILL, (("runbook", 0, "deadline"), "100000h")),
     r"runbook.0.deadline: .*longer than the 30 days"),
    ("warmup-nan", _raw((ROOT / SCENARIO).read_text(encoding="utf-8").replace("warmup: 4m", "warmup: .nan"),
                        SCENARIO), r"db-crash.yaml:\d+: warmup: numbers must be finite"),
    ("warmup-nan-str", _set(SCENARIO, (("warmup",), "nan")), r"warmup: durations must be finite"),
    ("at-1e309", _set(SCENARIO, (("faults", 0, "at"), "1e309")), r"faults.0.at: durations must be finite"),
    ("at-1.0e+309", _raw((ROOT / SCENARIO).read_text(encoding="utf-8").replace("at: 4m", "at: 1.0e+309"),
                        SCENARIO), r"faults.0.at: numbers must be finite"),
    ("duration-huge", _set(SCENARIO, (("faults", 0, "duration"), 1e300)), r"faults.0.duration: .*longer than"),
    ("max-duration-neg", _set(SCENARIO, (("max_duration",), "-5m")), r"max_duration: negative duration"),
    ("error-rate-nan", _set(SCENARIO, (("steady_state", "max_error_rate"), "nan")),
     r"steady_state.max_error_rate: Input should be a finite"),
    ("spawn-rate-inf", _set(SCENARIO, (("load", "spawn_rate"), "inf")), r"load.spawn_rate: Input should be a finite"),
    ("levels-nan", _set(DRILL, (("levels",), {"level1_above": "nan"})), r"levels.level1_above: Input should be a finite"),
    ("think-negative", _set(SCENARIO, (("load", "think_time"), [-1, 2])), r"load.think_time.0: negative duration"),
    ("think-reversed", _set(SCENARIO, (("load", "think_time"), ["54s", "18s"])),
     r"load.think_time: the shortest think time 54 is above the longest 18"),
    ("think-inf", _set(SCENARIO, (("load", "think_time"), ["inf", "1s"])), r"load.think_time.0: durations must be finite"),
    ("backup-every-1e309", _set(DRILL, (("stack", "backups"), {"full_every": "1e309"})),
     r"stack.backups.full_every: durations must be finite"),
    # addresses stay inside the drill
    ("address-private", _set(DRILL, (("stack", "insurance_backup_address"), "10.1.2.3:18090")),
     r"stack.insurance_backup_address: "),
    ("address-public", _set(DRILL, (("stack", "insurance_backup_address"), "8.8.8.8:53")),
     r"stack.insurance_backup_address: "),
    ("address-hostname", _set(DRILL, (("stack", "insurance_backup_address"), "insurer.example:443")),
     r"stack.insurance_backup_address: "),
    ("address-no-port", _set(DRILL, (("stack", "insurance_backup_address"), "127.0.0.9")),
     r"stack.insurance_backup_address: "),
    # shapes
    ("runbook-scalar", _set(DRILL, (("runbook",), "none")), r"runbook: "),
    # the drill's teams come from its plan: without the plan there are none
    ("class-without-plan", _set(DRILL, (("plan",), ...)), r"failure_class: a failure class is the plan's"),
    ("class-unknown", _set(DRILL, (("failure_class",), "db-crash")),
     r"failure_class: no failure class 'db-crash' in plan 'hospital' \(its classes: database-crash, "),
    ("class-skip-unknown", _set(DRILL, (("runbook_skip",), ["official-acount"])),
     r"runbook_skip.0: class 'database-crash' has no step 'official-acount' to leave out"),
    ("class-override-unknown", _set(DRILL, (("runbook", 0, "id"), "three-step-chek")),
     r"runbook.0.id: class 'database-crash' has no step 'three-step-chek' to override"),
    ("class-target-unknown", _set(DRILL, (("targets_skip",), ["detection"])),
     r"targets_skip.0: class 'database-crash' has no target 'detection' to leave out"),
    ("plan-unknown", _set(DRILL, (("plan",), "hospitl")), r"plan: no such plan 'hospitl'"),
    ("plan-missing-file", _set(DRILL, (("plan",), "../plans/nowhere.yaml")), r"plan: no such plan"),
    ("plan-not-text", _set(DRILL, (("plan",), [1])), r"plan: must be a shipped plan's name"),
    ("faults-empty", _set(SCENARIO, (("faults",), [])), r"faults: "),
]


@pytest.mark.parametrize("case,make,expect", CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_exits_2_with_one_located_line(tree, capsys, case, make, expect):
    path = make(tree)
    start = time.monotonic()
    code, lines = _validate(capsys, path)
    assert code == 2, (case, lines)
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    assert re.search(expect, lines[0]), lines[0]
    assert time.monotonic() - start < 5, "bounded parsing takes no time"
    if case not in ("oversized", "not-utf8", "empty", "multi-document"):
        # errors whose place is known name file and line
        assert LOCATED.match(lines[0]), lines[0]


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 50


def test_a_referenced_file_that_is_no_drill_is_blamed_on_the_field(tree, capsys):
    path = _set(DRILL, (("scenario",), "/etc/passwd.yaml"))(tree)
    _, lines = _validate(capsys, path)
    assert lines[0].startswith(f"hospital-drill: error: {path}:"), lines
    assert "scenario:" in lines[0] and "/etc/passwd.yaml:1" not in lines[0]


def test_every_shipped_file_still_validates(capsys):
    files = sorted((ROOT / "drills").glob("*.yaml")) + sorted((ROOT / "scenarios").glob("*.yaml"))
    assert len(files) >= 20
    capsys.readouterr()
    assert cli.main(["validate", *map(str, files)]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.count(": ok") == len(files)


@pytest.mark.parametrize("case", ["alias-bomb", "deep-list", "extends-cycle", "time-scale-inf",
                                  "name-traversal", "dup-top"])
def test_corpus_through_the_installed_command(tree, case):
    make = next(m for c, m, _ in CORPUS if c == case)
    path = make(tree)
    p = subprocess.run([sys.executable, "-m", "harness.cli", "validate", str(path)], capture_output=True,
                       text=True, timeout=30, cwd=ROOT)
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr


# --- fuzz ------------------------------------------------------------------------------------------

TOKENS = [".inf", "-.inf", ".nan", "1e309", "1.0e309", "-1", "0", "", "~", "[", "]", "{", "}", "&a",
          "*a", "*zz", "!!python/object:os.system", "!tag", "? ", ": ", "- ", "\t", "'", '"', "<<: 5",
          "../../..", "/etc/passwd", "8.8.8.8:53", "localhost:1", "9" * 60, "2024-13-45", "\x00",
          "extends: db-crash-failover.yaml", "extends: ../scenarios/db-crash.yaml"]
JUNK = [None, -1, 0, 1e300, "1e309", "nan", "-5m", "", [], {}, [[[[[]]]]], "../../..", "8.8.8.8:53",
        "host.example:80", 10 ** 30, True, "x" * 300, {"extends": "self"}, ["a", {"b": None}]]


def _mutate_text(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True) or [""]
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        op = rng.randrange(5)
        if op == 0:
            del lines[i]
            lines = lines or [""]
        elif op == 1:
            lines.insert(i, lines[i])  # a duplicate key, usually
        elif op == 2:
            cut = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:cut] + rng.choice(TOKENS) + lines[i][cut:]
        elif op == 3:
            lines[i] = lines[i].replace(":", rng.choice(["", "::", ": &a", ": *a"]), 1)
        else:
            lines = lines[:i] or [""]  # truncated
    return "".join(lines)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _mutate_data(data: dict, rng: random.Random) -> dict:
    paths = [p for p in _paths(data) if p]
    for _ in range(rng.randint(1, 2)):
        path = rng.choice(paths)
        node = data
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = rng.choice(JUNK)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation replaced a parent
    return data


def test_fuzz_shipped_files_never_traceback(tree, capsys):
    """Seeded and bounded: 250 mutants of the shipped files, each exit 0 or 2, never a traceback.
    A mutant may hold several errors, each reported on its own line."""
    rng = random.Random(12)
    shipped = sorted((tree / "drills").glob("*.yaml")) + sorted((tree / "scenarios").glob("*.yaml"))
    originals = {p: p.read_text(encoding="utf-8") for p in shipped}
    codes = {0: 0, 2: 0}
    start = time.monotonic()
    for n in range(250):
        path = rng.choice(shipped)
        text = originals[path]
        if n % 2:
            mutant = _mutate_text(text, rng)
        else:
            mutant = _dump(_mutate_data(yaml.safe_load(text), rng))
        target = path.with_name(f"mutant-{path.name}")
        target.write_text(mutant, encoding="utf-8")
        code, lines = _validate(capsys, target)
        assert code in codes, (n, path.name, mutant[:500], lines)
        if code == 2:  # each error a line of its own, each line an error, never the same twice
            assert lines and all(line.startswith("hospital-drill: error: ") for line in lines), (n, lines)
            assert len(set(lines)) == len(lines), (n, lines)
        codes[code] += 1
    assert codes[2] > 125, codes  # the mutations do break things
    assert time.monotonic() - start < 60


# --- the command line's own input ------------------------------------------------------------------

@pytest.fixture
def nothing_starts(monkeypatch):
    """A run that gets past the checks would start a stack: make that a test failure instead."""
    import harness.run

    class Started(Exception):
        pass

    def refuse(*a, **k):
        raise Started("a run started despite bad input")
    monkeypatch.setattr(harness.run, "DrillRun", refuse)
    return Started


@pytest.mark.parametrize("argv,expect", [
    (["--time-scale", "0"], r"--time-scale: Input should be greater than 0"),
    (["--time-scale", "-1"], r"--time-scale: Input should be greater than 0"),
    (["--time-scale", "nan"], r"--time-scale: the time scale must be a finite number"),
    (["--time-scale", "inf"], r"--time-scale: the time scale must be a finite number"),
    (["--time-scale", "1e12"], r"--time-scale: Input should be less than or equal to 3600"),
    (["--time-scale", "fast"], r"argument --time-scale: invalid float value"),
    (["--toxiproxy", "http://8.8.8.8:8474"], r"--toxiproxy: 8.8.8.8 is not loopback"),
    (["--toxiproxy", "http://10.213.0.5:8474"], r"--toxiproxy: 10.213.0.5 is not loopback"),
    (["--toxiproxy", "http://toxiproxy.example:8474"], r"--toxiproxy: 'toxiproxy.example' is a host name"),
    (["--toxiproxy", "ftp://127.0.0.1:8474"], r"--toxiproxy: .*not an http:// URL"),
    (["--toxiproxy", "http://127.0.0.1:99999"], r"--toxiproxy: .*not a URL"),
    (["--toxiproxy", "http://u:p@127.0.0.1:8474"], r"--toxiproxy: .*credentials"),
])
def test_run_flags_are_checked_before_anything_starts(nothing_starts, capsys, argv, expect):
    try:
        code = cli.main(["run", str(ROOT / DRILL), *argv])
    except SystemExit as e:  # argparse's own refusals end the process, with the same code
        code = e.code
    lines = capsys.readouterr().err.splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert re.search(expect, lines[0]), lines[0]


def test_toxiproxy_url_from_the_environment_is_checked(nothing_starts, capsys, monkeypatch):
    monkeypatch.setenv(cli.TOXIPROXY_ENV, "http://192.168.1.10:8474")
    with pytest.raises(SystemExit):  # the flag's default is read when the parser is built
        cli.main(["run", "--help"])
    capsys.readouterr()
    assert cli.main(["run", str(ROOT / DRILL)]) == 2
    assert "$" + cli.TOXIPROXY_ENV in capsys.readouterr().err


def test_a_loopback_toxiproxy_url_passes_the_check(nothing_starts):
    with pytest.raises(nothing_starts):
        cli.main(["run", str(ROOT / DRILL), "--toxiproxy", "http://127.0.0.1:8474", "--time-scale", "120"])


def test_out_naming_an_existing_file_is_refused(nothing_starts, capsys, tmp_path):
    out = tmp_path / "taken"
    out.write_text("mine\n")
    assert cli.main(["run", str(ROOT / DRILL), "--out", str(out)]) == 2
    assert f"{out}: --out: names an existing file" in capsys.readouterr().err
    assert out.read_text() == "mine\n"


def test_out_holding_a_run_is_refused(nothing_starts, capsys, tmp_path):
    (tmp_path / "journal.jsonl").write_text("{}\n")
    assert cli.main(["run", str(ROOT / DRILL), "--out", str(tmp_path)]) == 2
    assert "already holds a run" in capsys.readouterr().err


@pytest.mark.parametrize("argv,expect", [
    (["toxiproxy-server", "--host", "0.0.0.0"], r"--host: the server listens on loopback only"),
    (["toxiproxy-server", "--port", "70000"], r"--port: 70000 is not a port"),
    (["trend", "reports", "--threshold", "nan"], r"--threshold: nan is not a share"),
    (["compose", str(ROOT / DRILL), "--subnet", "8.8.8.0/24"], r"--subnet: 8.8.8.0/24 is not a private"),
    (["compose", str(ROOT / DRILL), "--subnet", "nonsense"], r"--subnet: not a network"),
])
def test_other_flags(capsys, argv, expect):
    assert cli.main(argv) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and re.search(expect, lines[0]), lines


def test_time_scale_zero_through_the_command(tmp_path):
    p = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(ROOT / DRILL), "--time-scale", "0",
                        "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "--time-scale" in p.stderr and not (tmp_path / "r").exists()


# --- ack (a live drill's desk through its control server: tests/unit/test_ack_desk.py) ---------------

def test_ack_where_no_drill_runs(tmp_path, capsys):
    assert cli.main(["ack", str(tmp_path), "offline-reception", "--by", "吴护士长"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "no drill is running here" in lines[0], lines
