"""The four kinds of runbook step as a user writes them: each error at its field, an exec step's script
resolved against the drill file (and refused at load, exit 2, when it cannot run), and every reader of
a step's kind (report texts, findings) telling the hospital's own steps apart."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from harness import cli
from harness.models import RunbookStep
from harness.score.card import StepResult
from harness.score.findings import Context, _steps
from harness.score.parts import step_params
from harness.score.texts import describe
from harness.validate import load_drill

BASE = {"id": "s", "group": "technical", "when": {"alert": "any"}}


def step(**kind) -> RunbookStep:
    return RunbookStep.model_validate({**BASE, **kind})


def error_of(**kind) -> tuple[str, str]:
    with pytest.raises(ValidationError) as e:
        step(**kind)
    err = e.value.errors()[0]
    return ".".join(map(str, err["loc"])), err["msg"].removeprefix("Value error, ")


def test_each_kind_is_named_by_kind():
    assert step(action="three_step_check").kind == "auto"
    assert step(manual={"duration": "1m"}).kind == "manual"
    assert step(**{"exec": {"argv": ["true"]}}).kind == "exec"
    assert step(http={"url": "{vip}/health"}).kind == "http"


@pytest.mark.parametrize("kind,field,why", [
    ({}, "", "exactly one of 'action', 'manual', 'exec', 'http'"),
    ({"action": "three_step_check", "exec": {"argv": ["true"]}}, "", "(it has action and exec)"),
    ({"exec": {}}, "exec", "give exactly one of 'argv' or 'script'"),
    ({"exec": {"argv": ["a"], "script": "b.sh"}}, "exec", "give exactly one of 'argv' or 'script'"),
    ({"exec": {"argv": ["a"], "args": ["x"]}}, "exec", "'args' go with 'script'"),
    ({"exec": {"argv": []}}, "exec.argv", "at least 1 item"),
    ({"exec": {"script": "a.sh", "env": {"HD_VIP_URL": "x"}}}, "exec.env", "the HD_ names are the drill's own"),
    ({"exec": {"script": "a.sh", "env": {"1BAD": "x"}}}, "exec.env", "not an environment variable name"),
    ({"exec": {"script": "a.sh", "timeout": "-5s"}}, "exec.timeout", "negative duration"),
    ({"exec": {"script": "a.sh", "shell": True}}, "exec.shell", "Extra inputs"),
    ({"http": {}}, "http.url", "Field required"),
    ({"http": {"url": "{app.app-9}/x"}}, "http.url", "unknown address {app.app-9}"),
    ({"http": {"url": "http://db.hospital.example/x"}}, "http.url", "on this machine"),
    ({"http": {"url": "{vip}/x", "method": "FETCH"}}, "http.method", "Input should be"),
    ({"http": {"url": "{vip}/x", "expect": [700]}}, "http.expect", "700 is not an HTTP status"),
    ({"http": {"url": "{vip}/x", "json": {"a": 1}, "body": "b"}}, "http", "give 'json' or 'body'"),
    ({"manual": {"duration": "1m"}, "with": {"a": 1}}, "", "'with' gives an action its parameters"),
])
def test_each_error_names_its_field(kind, field, why):
    loc, msg = error_of(**kind)
    assert loc == field
    assert why in msg


def test_http_expect_defaults_to_any_2xx():
    http = step(http={"url": "{vip}/x", "method": "post"}).http
    assert http.method == "POST"
    assert http.accepts(200) and http.accepts(204) and not http.accepts(301) and not http.accepts(500)
    only = step(http={"url": "{vip}/x", "expect": [409]}).http
    assert only.accepts(409) and not only.accepts(200)


# --- loading: the script is resolved against the drill file --------------------------------------

def _add_step(drill: Path, exec_: dict) -> Path:
    data = yaml.safe_load(drill.read_text())
    data["runbook"].append({"id": "failover-script", "group": "technical",
                            "when": {"after": "three-step-check"}, "exec": exec_})
    drill.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return drill


def _script(path: Path, executable: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    if executable:
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_script_is_resolved_against_the_drill_file(drill_copy, monkeypatch, tmp_path):
    script = _script(drill_copy.parent.parent / "runbooks" / "failover.sh")
    _add_step(drill_copy, {"script": "../runbooks/failover.sh", "args": ["pg-samecity"]})
    monkeypatch.chdir(tmp_path)  # not where the drill is
    loaded = load_drill(drill_copy)
    spec = loaded.drill.runbook[-1].exec_
    assert spec.script == str(script.resolve())
    assert spec.cwd == str(drill_copy.parent.resolve())
    assert spec.command() == [str(script.resolve()), "pg-samecity"]
    # the drill as run (copied into the run directory) keeps the absolute paths
    as_run = loaded.drill_data["runbook"][-1]["exec"]
    assert as_run["script"] == str(script.resolve()) and as_run["cwd"] == spec.cwd


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize("exec_,why", [
    ({"script": "missing.sh"}, "runbook.2.exec.script: 'missing.sh' not found"),
    ({"script": "plain.sh"}, "is not executable"),
    ({"script": "."}, "is not a file"),
    ({"script": "ok.sh", "cwd": "nowhere"}, "runbook.2.exec.cwd:"),
    ({"argv": ["no-such-program-of-the-hospital"]}, "runbook.2.exec.argv.0: 'no-such-program-of-the-hospital' "
                                                    "is not a program on PATH"),
])
def test_a_script_that_cannot_run_is_a_load_error_exit_2(drill_copy, capsys, exec_, why):
    _script(drill_copy.parent / "plain.sh", executable=False)
    _script(drill_copy.parent / "ok.sh")
    data = yaml.safe_load(drill_copy.read_text())
    data["runbook"] = data["runbook"][:2]  # the check and the level, then the script: index 2
    data["targets"] = [t for t in data["targets"] if t.get("step") in (None, "three-step-check",
                                                                       "declare-level")]
    drill_copy.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    _add_step(drill_copy, exec_)
    capsys.readouterr()
    code = cli.main(["validate", str(drill_copy)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert f"{drill_copy}:" in err[0] and why in err[0]
    # file:line: field: the line is the one where the field's value is written
    line = int(err[0].split(f"{drill_copy}:", 1)[1].split(":", 1)[0])
    key = err[0].split(": runbook.2.exec.", 1)[1].split(":", 1)[0].split(".")[0]
    assert line > _line_of(drill_copy, "exec:")
    assert drill_copy.read_text().splitlines()[line - 1].strip().startswith((f"{key}:", f"- {key}:"))


# --- readers of a step's kind -------------------------------------------------------------------------

def test_report_texts_name_the_hospitals_steps():
    started = {"type": "step.started", "step": "failover", "group": "technical", "kind": "exec",
               "action": None}
    assert describe(started) == "step failover started (technical, exec)"
    finished = {"type": "step.finished", "step": "failover", "ok": True,
                "detail": {"argv": ["/x/failover.sh"], "exit": 0, "stdout_tail": ["a" * 50] * 20,
                           "stderr_tail": [], "reported": {"promoted": "pg-samecity"}}}
    line = describe(finished)
    assert "promoted" in line and "stdout_tail" not in line and "argv" not in line


def test_step_params_show_what_an_exec_or_http_step_runs():
    exec_step = step(**{"exec": {"argv": ["./failover.sh", "pg-samecity"], "timeout": "2m"}})
    assert step_params(exec_step) == {"run": ["./failover.sh", "pg-samecity"], "timeout": 120.0}
    http_step = step(http={"url": "{vip}/admin/notice", "method": "post", "json": {"text": "x"}})
    assert step_params(http_step) == {"method": "POST", "url": "{vip}/admin/notice", "json": {"text": "x"}}


def _context(*rows: StepResult) -> Context:
    from harness.score.card import LevelResult, Overview
    overview = Overview.model_construct(status="completed")
    return Context(overview=overview, targets=[], steps=list(rows), alerts=[],
                   level=LevelResult.model_construct(ok=None), rpo=None, problems=[], steady=None)


def test_a_failed_exec_steps_finding_quotes_its_stderr_and_names_its_output():
    row = StepResult(id="failover", group="technical", kind="exec", status="failed", finished=42.0,
                     error="failover.sh: exit 3: pg-sametown: no such standby", output="steps/failover",
                     stderr_tail=[f"line {i}" for i in range(8)] + ["pg-sametown: no such standby"])
    ctx = _context(row)
    _steps(ctx)
    (finding,) = ctx.out
    assert finding.kind == "step" and finding.capability == "equipment"
    assert "line 4 | line 5 | line 6 | line 7 | pg-sametown: no such standby" in finding.evidence
    assert "line 3" not in finding.evidence
    assert "steps/failover/stderr.log" in finding.evidence
    assert "hospital's script" in finding.action and "automated action" not in finding.action
    assert "steps/failover/stderr.log" in finding.evidence_zh


def test_a_failed_builtin_action_keeps_its_own_finding():
    row = StepResult(id="promote", group="technical", kind="auto", action="promote_standby",
                     status="failed", finished=42.0, error="pg-x is not a running standby")
    ctx = _context(row)
    _steps(ctx)
    (finding,) = ctx.out
    assert "automated action promote_standby" in finding.action and "stderr" not in finding.evidence
