"""Third-party plugins through entry points: the example of docs/plugins.md, loaded as a plugin is."""
from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

from harness import cli
from harness.faults import base as faults
from harness.faults.base import FAULTS
from harness.models import FaultSpec
from harness.registry import PluginError
from harness.runbook import actions
from harness.runbook.actions import ACTIONS
from harness.score.card import LevelResult, Overview, StepResult
from harness.score.response import response_findings
from harness.stack.rpo import promotions, rpo_trigger

ROOT = Path(__file__).resolve().parents[2]
T = 1_764_000_000.0


def docs_example() -> str:
    """The first python block of docs/plugins.md: the plugin a reader would copy."""
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """Write a plugin package `acme_drills` holding `code`; fake the entry points naming it."""
    made: list[str] = []

    def install(code: str, groups=("hospital_drill.faults", "hospital_drill.actions"),
                module: str = "acme_drills.plugin") -> None:
        pkg = tmp_path / "acme_drills"
        pkg.mkdir(exist_ok=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "plugin.py").write_text(code)
        eps = [metadata.EntryPoint("acme", module, g) for g in groups]
        monkeypatch.setattr(metadata, "entry_points",
                            lambda group=None: [ep for ep in eps if ep.group == group])
        made.append(module)

    monkeypatch.syspath_prepend(str(tmp_path))
    with FAULTS.isolated(), ACTIONS.isolated():
        yield install
    for name in [m for m in sys.modules if m == "acme_drills" or m.startswith("acme_drills.")]:
        del sys.modules[name]


def test_the_docs_example_plugs_in_a_fault_and_an_action_lazily(plugin):
    plugin(docs_example())
    assert "acme_drills.plugin" not in sys.modules  # nothing is imported before a lookup
    fault = faults.build(FaultSpec(at="1m", type="slow_database", params={"latency_ms": 300}))
    assert "acme_drills.plugin" in sys.modules
    assert (fault.type_name, fault.target, fault.params.latency_ms) == ("slow_database", "db", 300)
    assert FAULTS.origin("slow_database") == "acme_drills.plugin.SlowDatabase"
    assert list(FAULTS)[-1] == "slow_database"  # plugins after the harness's own
    with pytest.raises(ValueError, match=r"^params\.latency_ms: "):
        faults.build(FaultSpec(at="1m", type="slow_database", params={"latency_ms": 0}))
    # the action came with the same module, checked like a built-in one
    assert actions.validate("restart_service", {"node": "app-backup"}).node == "app-backup"
    with pytest.raises(ValueError, match=r"^with\.node: unknown app/thirdparty/egress 'pg-primary'"):
        actions.validate("restart_service", {"node": "pg-primary"})
    assert not ACTIONS.declares("restart_service", "failover")


def test_the_plugin_is_gone_after_the_isolated_block(plugin):
    assert "slow_database" not in FAULTS and "restart_service" not in ACTIONS


def test_a_plugin_that_takes_a_builtin_name_fails_naming_both_origins(plugin):
    plugin("from harness.faults.base import Fault, register\n\n"
           "@register\nclass DbCrash(Fault):\n    type_name = 'db_crash'\n",
           groups=("hospital_drill.faults",))
    with pytest.raises(PluginError) as e:
        FAULTS["db_crash"]
    assert str(e.value) == (
        "plugin 'acme' (hospital_drill.faults = acme_drills.plugin) does not load: DuplicateName: "
        "fault 'db_crash' registered twice: by harness.faults.database.DbCrash and by "
        "acme_drills.plugin.DbCrash")


def test_a_broken_plugin_stops_validate_with_one_line_and_exit_2(plugin, capsys):
    plugin("import acme_drills_sdk_not_installed\n", groups=("hospital_drill.faults",))
    code = cli.main(["validate", str(ROOT / "scenarios" / "db-crash.yaml")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0
    assert err.startswith("hospital-drill: error: plugin 'acme' (hospital_drill.faults = "
                          "acme_drills.plugin) does not load: ModuleNotFoundError:")


PLUGIN_CAPABILITIES = '''
from harness.faults.base import Fault, register
from harness.runbook.actions import Params, action


@register
class VmPowerOff(Fault):
    type_name = "vm_power_off"
    crashes_database = True

    def inject(self, stack):
        return {}

    def revert(self, stack):
        return {}


@action("fail_over_site", failover=True, promotes=True)
def fail_over_site(ctx, p: Params):
    return {}
'''


def test_what_a_plugin_declares_drives_the_rpo_trigger_and_the_score(plugin):
    plugin(PLUGIN_CAPABILITIES)
    crash = {"type": "fault.injected", "wall": T, "fault": "vm", "fault_type": "vm_power_off"}
    site = {"type": "step.finished", "wall": T - 5, "ok": True, "step": "dr",
            "action": "fail_over_site", "detail": {}}
    assert rpo_trigger([crash])["trigger"] == "vm_power_off"
    # the promotion came first: the lost window ends there
    assert rpo_trigger([site, crash])["trigger"] == "promotion"
    assert promotions([site]) == [site]
    check = {"type": "check.finished", "wall": T + 1, "verdict": "not_system_failure", "reason": "4xx"}
    steps = [StepResult(id="dr", group="technical", action="fail_over_site", status="ok", started=30.0)]
    found = response_findings([crash, check], LevelResult(declared=3, declared_at=20.0), steps,
                              Overview(drill="d", time_scale=60.0, date="2025-11-25"))
    assert [f.text for f in found] == ["failover on a false alarm"]
