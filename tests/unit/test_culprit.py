"""The culprit of a failed switch, from the services' own evidence: which interface or line failed and
the address that refused, not the address the runbook step switched to."""
from __future__ import annotations

import http.client
import socket
from types import SimpleNamespace

import pytest

from harness.models import StackConfig
from harness.runbook.culprit import Culprit, corrective_action, locate, probe_address
from harness.score.card import LevelResult, Overview, StepResult
from harness.score.findings import Context, build_findings
from harness.stack import topology
from harness.stack.services.egress import what_happened

LISTEN = {"egress-primary": "127.0.0.1:7001", "egress-backup": "127.0.0.1:7002",
          "payment-primary": "127.0.0.1:7011", "payment-backup": "127.0.0.1:7012",
          "insurance-backup": "127.0.0.1:7022"}


class FakeLinks:
    def __init__(self, upstreams: dict[str, str]):
        self.upstreams = upstreams

    def get(self, name: str) -> dict:
        return {"name": name, "listen": LISTEN[name], "upstream": self.upstreams[name]}


def fake_stack(config: StackConfig | None = None, **upstreams: str):
    ups = {"egress-primary": "127.0.0.1:8000", "egress-backup": "127.0.0.1:8000",
           "payment-primary": "127.0.0.1:8011", "payment-backup": "127.0.0.1:8012",
           "insurance-backup": "127.0.0.1:8022",
           **{k.replace("_", "-"): v for k, v in upstreams.items()}}
    return SimpleNamespace(link_listen=dict(LISTEN), links=FakeLinks(ups), addresses={},
                           config=config or StackConfig())


def probe_table(refusing: set[str]):
    tried = []

    def probe(address):
        tried.append(address)
        return (False, "refused connection") if address in refusing else (True, "takes connections")
    probe.tried = tried
    return probe


def test_a_refusal_the_gateway_saw_is_named_where_it_happened():
    # the payment interface's link is down: the gateway's connection to it was refused
    evidence = {"component": "payment-primary", "address": LISTEN["payment-primary"],
                "what": "refused connection", "reported_by": "egress-gw"}
    probe = probe_table(set())
    c = locate(fake_stack(), evidence, probe)
    assert (c.component, c.address, c.what) == ("payment-primary", "127.0.0.1:7011", "refused connection")
    assert probe.tried == []  # the evidence said it all
    assert c.words().startswith("payment primary interface 127.0.0.1:7011 refused connection")
    assert "reported by egress-gw" in c.words()


def test_a_wrong_configured_address_behind_a_link_is_found_and_named():
    cfg = StackConfig(backup_addresses={"payment": "127.0.0.9:18091"})
    stack = fake_stack(cfg, payment_backup="127.0.0.9:18091")
    evidence = {"component": "payment-backup", "address": LISTEN["payment-backup"],
                "what": "closed the connection without an answer", "reported_by": "egress-gw"}
    probe = probe_table({"127.0.0.9:18091"})
    c = locate(stack, evidence, probe)
    assert probe.tried == ["127.0.0.9:18091"]
    assert (c.address, c.what, c.via, c.via_address) == (
        "127.0.0.9:18091", "refused connection", "payment-backup", "127.0.0.1:7012")
    # the culprit comes first, the link in front of it after
    words = c.words()
    assert words.index("127.0.0.9:18091") < words.index("127.0.0.1:7012")
    assert corrective_action(stack, c) == ("correct the configured address "
                                           "(stack.backup_addresses.payment) and test it")


def test_the_older_insurance_field_is_the_one_the_fix_names():
    cfg = StackConfig(insurance_backup_address="127.0.0.9:18090")
    assert cfg.backup_address("insurance") == "127.0.0.9:18090"
    stack = fake_stack(cfg, insurance_backup="127.0.0.9:18090")
    c = Culprit("insurance-backup", "127.0.0.9:18090", "refused connection")
    assert "stack.insurance_backup_address" in corrective_action(stack, c)


def test_an_interface_that_answers_with_an_error_is_named_as_the_evidence_says():
    evidence = {"component": "payment-primary", "address": LISTEN["payment-primary"],
                "what": "answered HTTP 500: payment-primary: interface error (simulated)",
                "reported_by": "payment-primary"}
    probe = probe_table(set())
    c = locate(fake_stack(), evidence, probe)
    assert probe.tried == ["127.0.0.1:8011"]  # the address behind the link does take connections
    assert (c.address, c.via) == ("127.0.0.1:7011", None) and c.what.startswith("answered HTTP 500")
    assert "switch payment to its backup interface" in corrective_action(fake_stack(), c)


def test_a_line_the_app_could_not_reach_is_the_culprit_and_no_evidence_is_no_culprit():
    evidence = {"component": "egress-backup", "address": LISTEN["egress-backup"],
                "what": "refused connection", "reported_by": "app-primary"}
    c = locate(fake_stack(), evidence, probe_table(set()))
    assert c.words().startswith("backup egress line 127.0.0.1:7002 refused connection")
    assert corrective_action(fake_stack(), c) == "correct or restore the backup egress line and test it"
    assert locate(fake_stack(), None) is None and locate(fake_stack(), {"address": "x:1"}) is None


def test_probe_address_tells_refused_from_taken():
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        taken = f"127.0.0.1:{srv.getsockname()[1]}"
        assert probe_address(taken) == (True, "takes connections")
    assert probe_address(taken) == (False, "refused connection")  # closed now
    assert probe_address("nonsense")[0] is False


def test_the_gateway_says_what_an_upstream_did():
    assert what_happened(ConnectionRefusedError(111, "Connection refused")) == "refused connection"
    assert what_happened(http.client.RemoteDisconnected("x")) == "closed the connection without an answer"
    assert what_happened(ConnectionResetError(104, "Connection reset by peer")) \
        == "closed the connection without an answer"


def test_every_third_party_has_a_primary_and_a_backup_interface_with_a_link():
    for kind in ("insurance", "payment", "notification"):
        for which in ("primary", "backup"):
            name = topology.interface(kind, which)
            assert topology.NODES[name].role == kind and topology.LINKS[name].upstream == name
    assert topology.describe("notification-backup") == "notification backup interface"


@pytest.mark.parametrize("error,culprit,context", [
    ("payment primary interface 127.0.0.1:7011 refused connection (reported by egress-gw); 3 test "
     "payment(s) after the switch to egress backup: HTTP 502", "127.0.0.1:7011", None),
    ("payment backup interface 127.0.0.9:18091 refused connection (behind link payment-backup at "
     "127.0.0.1:7012, which closed the connection without an answer)", "127.0.0.9:18091",
     "127.0.0.1:7012"),
])
def test_the_failed_step_finding_names_the_culprit_first(error, culprit, context):
    step = StepResult(id="switch-line", group="technical", kind="auto", action="switch_and_verify",
                      status="failed", finished=42.0, error=error)
    ctx = Context(overview=Overview(drill="d", time_scale=60, status="completed"), targets=[],
                  steps=[step], alerts=[], level=LevelResult(), rpo=None, problems=[],
                  steady={"ok": True})
    top = build_findings(ctx)[0]
    assert top.kind == "step" and culprit in top.evidence
    assert f"Verify {culprit} is the right address" in top.action
    if context:
        assert context not in top.action  # the link in front of it is not what to fix


def test_the_docker_plan_wires_every_interface_and_the_configured_backup_addresses():
    import json

    from harness.stack.docker.plan import make_plan
    cfg = StackConfig(backup_addresses={"payment": "127.0.0.9:18091", "notification": "127.0.0.9:18092"})
    plan = make_plan("hd-test", "10.213.250.0/24", cfg)
    assert plan.wiring["payment-backup"] == "127.0.0.9:18091"
    assert plan.wiring["notification-backup"] == "127.0.0.9:18092"
    assert plan.wiring["insurance-backup"] == plan.boxes["insurance-backup"].address  # ours
    gateway = json.loads(plan.boxes["egress-gw"].env["HD_CONFIG"])
    assert set(gateway["routes"]) == {n.name for n in topology.THIRD_PARTIES}
    app = json.loads(plan.boxes["app-primary"].env["HD_CONFIG"])
    assert app["routes"] == {"egress": "primary", "insurance": "primary", "payment": "primary",
                             "notification": "primary"}
