"""Run directories: runs started together without --out each get one of their own, and every part of
one is where `RunDir` says, for the writers and the readers alike."""
from __future__ import annotations

import json
import multiprocessing
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


from harness.load.runner import PatientLoad
from harness.rundir import RunDir, claim_run_dir
from harness.stack.local import tear_down_dir
from harness.stack.process import read_pids, record_pids

ROOT = Path(__file__).resolve().parents[2]


def test_same_second_runs_never_share_a_directory(tmp_path):
    with ThreadPoolExecutor(16) as pool:
        claims = list(pool.map(lambda _: claim_run_dir(tmp_path, "db-crash", "20260101-010000"), range(40)))
    ids = [run_id for run_id, _ in claims]
    assert len(set(ids)) == 40
    assert ids.count("db-crash-20260101-010000") == 1  # the first keeps the plain name
    assert all(d.is_dir() and d.parent == tmp_path and d.name == i for i, d in claims)


def _claim(root: str) -> str:
    return claim_run_dir(root, "x", "20260101-010000")[0]


def test_separate_processes_never_share_a_directory(tmp_path):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        ids = pool.map(_claim, [str(tmp_path)] * 12)
    assert sorted(ids) == sorted({*ids}) and len(ids) == 12


def test_an_existing_directory_is_never_reused(tmp_path):
    (tmp_path / "x-s").mkdir()
    (tmp_path / "x-s" / "journal.jsonl").write_text("earlier run\n")
    run_id, run_dir = claim_run_dir(tmp_path, "x", "s")
    assert run_id == "x-s-2" and run_dir.is_dir() and not any(run_dir.iterdir())


def test_out_dir_is_the_users_choice(tmp_path):
    run_id, run_dir = claim_run_dir(tmp_path / "reports", "x", "s", out_dir=tmp_path / "mine")
    assert run_id == "x-s" and run_dir == Path(tmp_path / "mine")
    assert not (tmp_path / "reports").exists()  # nothing made where the user did not ask


# --- the layout ------------------------------------------------------------------------------------


def test_every_part_of_the_layout_lives_under_the_run_directory(tmp_path):
    d = RunDir(tmp_path / "run")
    parts = {d.journal, d.records, d.logs, d.pids, d.control, d.steps, d.attack, d.probes, d.integrity,
             d.drill, d.scenario, d.score, d.config, d.state, d.pg, *d.reports.values()}
    assert len(parts) == 20  # no two parts share a name (reports["json"] is the score)
    assert all(p.parent == d.path for p in parts)
    assert d.log("app-primary") == d.logs / "app-primary.log"
    assert d.attack_records("flood") == d.attack / "flood" / "records"
    assert d.reports["json"] == d.score
    assert RunDir.of(d) is d and RunDir.of(str(d)) == d and os.fspath(d) == str(tmp_path / "run")


def test_holds_run_and_is_run_follow_the_journal_and_the_score(tmp_path):
    d = RunDir(tmp_path)
    assert not d.holds_run() and not d.is_run()
    d.score.write_text("{}")
    assert d.is_run() and not d.holds_run()
    d.journal.write_text("")
    assert d.holds_run()


def test_pid_records_are_the_layouts_pids_file(tmp_path):
    d = RunDir(tmp_path)
    record_pids(d, {"locust-0": 101})
    record_pids(tmp_path, {"locust-1": 102})  # a plain path still works
    assert json.loads(d.pids.read_text()) == {"locust-0": 101, "locust-1": 102}
    assert read_pids(d) == {"locust-0": 101, "locust-1": 102}


def test_down_removes_the_stack_records_of_the_layout(tmp_path):
    d = RunDir(tmp_path)
    d.state.write_text("{}")
    d.pids.write_text("{}")
    d.journal.write_text("")
    assert tear_down_dir(d) == []  # nothing was running
    assert not d.state.exists() and not d.pids.exists()
    assert d.journal.exists()  # what the report needs stays


def test_the_load_of_a_run_writes_where_the_layout_says(tmp_path):
    d = RunDir(tmp_path)
    load = PatientLoad.for_run("http://127.0.0.1:9", d, users=2, spawn_rate=1)
    assert load.records_dir == d.records and load.log_dir == d.logs
    bots = PatientLoad("http://127.0.0.1:9", d.attack_records("flood"), users=2, spawn_rate=1)
    assert bots.log_dir == RunDir(d.attack_of("flood")).logs  # laid out like a run of its own


# modules that still spell a part of the run directory: the lines to change are listed per file
NOT_YET = {"run.py", "monitor/monitor.py", "monitor/data_rules.py", "report/render.py",
           "report/trend.py", "stack/docker/cleanup.py", "stack/docker/stack.py", "stack/pg_env.py",
           "stack/postgres.py",
           "stack/docker/images.py"}  # its "pg" is an image build context, not a run directory
SPELLED = re.compile(r"""/\s*["'](journal\.jsonl|records|logs|acks|pids\.json|attack|probes\.jsonl|"""
                     r"""integrity\.jsonl|drill\.yaml|scenario\.yaml|score\.json|config|state\.json|pg|"""
                     r"""report\.html|report\.md|junit\.xml)["']""")


def test_the_converted_modules_ask_the_layout_instead_of_spelling_it():
    spelled = []
    for path in (ROOT / "harness").rglob("*.py"):
        rel = path.relative_to(ROOT / "harness").as_posix()
        if rel == "rundir.py" or rel in NOT_YET:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if SPELLED.search(line):
                spelled.append(f"harness/{rel}:{n}: {line.strip()}")
    assert spelled == []
