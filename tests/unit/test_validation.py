"""Bad input gets one line naming the file, line and field — and nothing starts."""
import re
import subprocess
import sys

import pytest

from harness.errors import InputError
from harness.validate import load_drill, validate_file


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_shipped_files_validate(repo_root):
    for f in sorted((repo_root / "drills").glob("*.yaml")) + sorted((repo_root / "scenarios").glob("*.yaml")):
        assert validate_file(f)


def test_default_drill_model(repo_root):
    loaded = load_drill(repo_root / "drills" / "db-crash-failover.yaml")
    d = loaded.drill
    assert d.time_scale == 60
    assert {t.id for t in d.targets} >= {"detect", "dr-takeover", "core-recovered", "rpo"}
    detect = next(t for t in d.targets if t.id == "detect")
    assert detect.within == 60
    for group, team in d.teams.items():
        assert len(team.core) == 5 and len(team.backup) == 3, group
    assert loaded.faults[0].type_name == "db_crash"
    assert loaded.scenario.faults[0].at == 240


@pytest.mark.parametrize("old,new,expect", [
    ("type: db_crash", "type: db_crahs", r"db-crash.yaml:\d+: faults\.0\.type: unknown fault 'db_crahs'"),
    ("target: pg-primary", "target: pg-nowhere", r"faults\.0\.target: unknown postgres 'pg-nowhere'"),
    ("at: 4m", "at: -4m", r"db-crash.yaml:\d+: faults\.0\.at: negative duration"),
    ("warmup: 4m", "warmup: soon", r"warmup: not a duration"),
    ("users: 24", "users: lots", r"load\.users"),
    ("spawn_rate: 24", "spawn_rate: 24\n  stampede: true", r"load\.stampede: unknown field"),
])
def test_bad_scenario(whole_drill_copy, old, new, expect):
    _edit(whole_drill_copy.parent.parent / "scenarios" / "db-crash.yaml", old, new)
    with pytest.raises(InputError) as e:
        load_drill(whole_drill_copy)
    assert re.search(expect, str(e.value)), str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("old,new,expect", [
    ("action: promote_standby", "action: promote_everything", r"runbook\.2\.action: unknown action"),
    ("with: {standby: pg-samecity}", "with: {standby: pg-mars}", r"runbook\.2\.with\.standby: unknown postgres 'pg-mars'"),
    ("deadline: 3m", "deadline: -3m", r"runbook\.2\.deadline: negative duration"),
    ("step: promote-same-city, within: 3m", "step: promote-mars, within: 3m", r"unknown step 'promote-mars'"),
    ("when: {after: three-step-check}", "when: {after: ghost-step}", r"unknown step 'ghost-step'"),
    ("time_scale: 60", "time_scale: 0", r"time_scale"),
    ("scenario: ../scenarios/db-crash.yaml", "scenario: ../scenarios/nope.yaml", r"scenario: scenario file"),
    ("group: clinical_support", "group: kitchen", r"runbook\.6\.group"),
])
def test_bad_drill(whole_drill_copy, old, new, expect):
    _edit(whole_drill_copy, old, new)
    with pytest.raises(InputError) as e:
        load_drill(whole_drill_copy)
    msg = str(e.value)
    assert msg.startswith(str(whole_drill_copy)), msg
    assert re.search(expect, msg), msg


def test_malformed_yaml_names_line(whole_drill_copy):
    whole_drill_copy.write_text("name: x\nrunbook: [\n  - id: a\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_drill(whole_drill_copy)
    assert re.search(r"db-crash-failover.yaml:\d+: malformed YAML", str(e.value))


def test_cli_bad_input_exits_2_and_starts_nothing(whole_drill_copy, tmp_path):
    _edit(whole_drill_copy, "action: promote_standby", "action: promote_everything")
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(whole_drill_copy), "--out", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown action 'promote_everything'" in lines[0], p.stderr
    assert not out.exists()  # nothing half-done


def test_cli_validate_reports_each_file(repo_root):
    p = subprocess.run([sys.executable, "-m", "harness.cli", "validate",
                        str(repo_root / "drills" / "db-crash-failover.yaml"),
                        str(repo_root / "scenarios" / "db-crash.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count(": ok") == 2


def test_cli_unknown_backend_exits_2(repo_root, tmp_path):
    p = subprocess.run([sys.executable, "-m", "harness.cli", "run",
                        str(repo_root / "drills" / "db-crash-failover.yaml"), "--backend", "cloud",
                        "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "unknown backend 'cloud'" in p.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("old,new,expect", [
    ("type: db_crash\n    target: pg-primary", "type: egress_saturation\n    target: db",
     r"db-crash.yaml:\d+: faults\.0\.target: 'db' is not an egress line"),
    ("type: db_crash\n    target: pg-primary", "type: egress_saturation\n    params: {flows: 0}",
     r"db-crash.yaml:\d+: faults\.0\.params\.flows: Input should be greater than or equal to 1"),
])
def test_bad_network_fault(whole_drill_copy, old, new, expect):
    _edit(whole_drill_copy.parent.parent / "scenarios" / "db-crash.yaml", old, new)
    with pytest.raises(InputError) as e:
        load_drill(whole_drill_copy)
    assert re.search(expect, str(e.value)), str(e.value)


@pytest.mark.parametrize("old,new,expect", [
    ("action: promote_standby\n    with: {standby: pg-samecity}", "action: switch_and_verify\n    with: {}",
     r"runbook\.2\.with\.notification: give egress, insurance, payment or notification"),
    ("action: promote_standby\n    with: {standby: pg-samecity}",
     "action: switch_and_verify\n    with: {egress: spare}", r"runbook\.2\.with\.egress: Input should be"),
    ("remote_dr: true", "remote_dr: true\n  egress_lines: {primary: {capacity_kbps: -5}}",
     r"stack\.egress_lines\.primary\.capacity_kbps: Input should be greater than 0"),
    ("remote_dr: true", "remote_dr: true\n  backup_addresses: {payment: 10.1.2.3:443}",
     r"stack\.backup_addresses\.payment: .*stay on this machine"),
    ("remote_dr: true", "remote_dr: true\n  backup_addresses: {sms: 127.0.0.9:18091}",
     r"stack\.backup_addresses\.sms"),
    ("remote_dr: true", "remote_dr: true\n  insurance_backup_address: 127.0.0.9",
     r"stack\.insurance_backup_address: .*not a host:port"),
])
def test_bad_network_drill(whole_drill_copy, old, new, expect):
    _edit(whole_drill_copy, old, new)
    with pytest.raises(InputError) as e:
        load_drill(whole_drill_copy)
    assert re.search(expect, str(e.value)), str(e.value)
