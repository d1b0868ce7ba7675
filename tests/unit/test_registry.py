"""The one registry type: names, origins, order, lazy loading, entry points, capabilities."""
from __future__ import annotations

import sys
from importlib import metadata

import pytest

from harness.faults.base import FAULTS
from harness.monitor.monitor import RULES, SAMPLERS
from harness.registry import DuplicateName, PluginError, Registry, UnknownName
from harness.runbook.actions import ACTIONS
from harness.stack import backends


class Entry:
    def __init__(self, failover: bool = False):
        self.failover = failover


def test_a_name_is_taken_once_and_the_error_names_both_origins():
    reg: Registry[Entry] = Registry("gadget")
    reg.add("pager", Entry(), origin="hospital.pagers.Pager")
    with pytest.raises(DuplicateName) as e:
        reg.add("pager", Entry(), origin="acme.pagers.Pager")
    assert str(e.value) == ("gadget 'pager' registered twice: by hospital.pagers.Pager "
                            "and by acme.pagers.Pager")
    assert list(reg) == ["pager"]


def test_an_unknown_name_says_what_is_known_and_get_answers_none():
    reg: Registry[Entry] = Registry("gadget")
    reg.add("pager", Entry(), origin="m")
    reg.add("beeper", Entry(), origin="m")
    with pytest.raises(UnknownName) as e:
        reg["fax"]
    assert str(e.value) == "unknown gadget 'fax' (known: beeper, pager)"
    assert reg.get("fax") is None and "fax" not in reg and "pager" in reg


def test_iteration_is_registration_order_module_by_module_in_the_named_order(tmp_path, monkeypatch):
    for f in ("__init__", "net", "data"):
        (tmp_path / "board").mkdir(exist_ok=True)
        (tmp_path / "board" / f"{f}.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[Entry] = Registry("rule", builtin=("board", "board.data", "board.net"))
    # registered in another order than the registry names the modules (imported early elsewhere)
    reg.add("line_down", Entry(), origin="board.net._down")
    reg.add("plugin_rule", Entry(), origin="acme.rules._x")
    reg.add("rows_missing", Entry(), origin="board.data._rows")
    reg.add("journey_failed", Entry(), origin="board._journey")
    reg.add("line_slow", Entry(), origin="board.net._slow")
    assert list(reg) == ["journey_failed", "rows_missing", "line_down", "line_slow", "plugin_rule"]
    assert reg.origin("line_slow") == "board.net._slow"
    for m in ("board", "board.net", "board.data"):
        sys.modules.pop(m, None)


def test_declares_asks_an_entry_by_name_and_unknown_names_declare_nothing():
    reg: Registry[Entry] = Registry("action")
    reg.add("promote", Entry(failover=True), origin="m")
    reg.add("notice", Entry(), origin="m")
    assert reg.declares("promote", "failover")
    assert not reg.declares("notice", "failover")
    assert not reg.declares("uninstalled_plugin_action", "failover")
    assert not reg.declares(None, "failover") and not reg.declares("promote", "no_such_capability")


def test_builtin_modules_are_imported_at_the_first_lookup_not_before(tmp_path, monkeypatch):
    (tmp_path / "lazy_gadgets.py").write_text(
        "from test_registry_home import GADGETS\nGADGETS.add('siren', object(), origin=__name__)\n")
    home = type(sys)("test_registry_home")
    home.GADGETS = Registry("gadget", builtin=("lazy_gadgets",))
    monkeypatch.setitem(sys.modules, "test_registry_home", home)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_gadgets", raising=False)
    assert "lazy_gadgets" not in sys.modules
    assert "siren" in home.GADGETS
    assert "lazy_gadgets" in sys.modules and home.GADGETS.origin("siren") == "lazy_gadgets"
    sys.modules.pop("lazy_gadgets", None)


def fake_entry_points(monkeypatch, *eps: metadata.EntryPoint) -> list[str]:
    """Replace the installed entry points by `eps`; returns the groups asked for, in order."""
    asked: list[str] = []

    def entry_points(group=None):
        asked.append(group)
        return [ep for ep in eps if ep.group == group]
    monkeypatch.setattr(metadata, "entry_points", entry_points)
    return asked


def test_entry_points_are_read_once_at_the_first_lookup(monkeypatch):
    asked = fake_entry_points(monkeypatch)
    reg: Registry[Entry] = Registry("gadget", group="hospital_drill.gadgets")
    reg.add("pager", Entry(), origin="m")
    assert asked == []
    assert list(reg) == ["pager"] and reg["pager"] and len(reg) == 1
    assert asked == ["hospital_drill.gadgets"]


def test_a_broken_plugin_fails_every_lookup_with_one_line_naming_its_entry_point(monkeypatch):
    fake_entry_points(monkeypatch, metadata.EntryPoint(
        "acme", "acme_drills_not_installed.plugin", "hospital_drill.gadgets"))
    reg: Registry[Entry] = Registry("gadget", group="hospital_drill.gadgets")
    for _ in range(2):
        with pytest.raises(PluginError) as e:
            reg.get("pager")
        msg = str(e.value)
        assert msg.startswith("plugin 'acme' (hospital_drill.gadgets = acme_drills_not_installed.plugin) "
                              "does not load: ModuleNotFoundError: ")
        assert "\n" not in msg and e.value.exit_code == 2


def test_the_harness_registries_hold_their_entries_with_their_origins():
    assert FAULTS.origin("db_crash") == "harness.faults.database.DbCrash"
    assert ACTIONS.origin("switch_app") == "harness.runbook.service_actions.switch_app"
    assert RULES.origin("egress_saturated").startswith("harness.monitor.network_rules.")
    assert set(SAMPLERS) >= {"reconcile", "audit", "egress_lines", "redundancy", "traffic"}
    # the board's own rules first, then the other failure classes' modules, in the order named
    modules = [RULES.origin(r).rsplit(".", 1)[0] for r in RULES]
    ranks = [RULES.builtin.index(m) for m in modules]
    assert ranks == sorted(ranks) and ranks[0] == 0


def test_capabilities_are_declared_by_the_plugins_themselves():
    assert {f for f in FAULTS if FAULTS.declares(f, "loses_data")} == {"data_deletion"}
    assert {f for f in FAULTS if FAULTS.declares(f, "crashes_database")} == {"db_crash"}
    assert {a for a in ACTIONS if ACTIONS.declares(a, "promotes")} == {"promote_standby"}
    assert {a for a in ACTIONS if not ACTIONS[a].changes_stack} >= {"three_step_check",
                                                                    "declare_level"}
    assert not ACTIONS.declares("notify", "failover") and ACTIONS.declares("switch_egress", "failover")


def test_an_unknown_backend_is_bad_usage_naming_the_flag():
    with pytest.raises(Exception) as e:
        backends.get("podman")
    assert str(e.value) == "--backend: unknown backend 'podman' (known: docker, local)"
    assert e.value.exit_code == 2
