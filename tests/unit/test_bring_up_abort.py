"""A bring-up that fails with any error (here a Toxiproxy LinkError) is an aborted run: exit 3, a
journal that says why, and a report all the same."""
from __future__ import annotations

import json

from harness import cli
from harness.journal import read_journal
from harness.netfault.client import LinkError
from harness.stack import backends


class RefusingBackend:
    def up(self, run_dir, config, time_scale, **_):
        raise LinkError("PUT /proxies/db: connection refused")


def test_a_failed_bring_up_exits_3_and_writes_its_report(repo_root, tmp_path, monkeypatch, capsys):
    real_get = backends.get
    monkeypatch.setattr(backends, "get", lambda name: RefusingBackend() if name == "local" else real_get(name))
    out = tmp_path / "run"
    code = cli.main(["run", str(repo_root / "drills" / "db-crash-failover.yaml"), "--out", str(out),
                     "--quiet"])
    assert code == 3
    fin = read_journal(out / "journal.jsonl").first("run.finished")
    assert fin["status"] == "aborted"
    assert fin["reason"] == "bring-up failed: LinkError: PUT /proxies/db: connection refused"
    assert json.loads((out / "score.json").read_text())["verdict"] == "aborted"
    assert (out / "report.html").exists() and 'errors="1"' in (out / "junit.xml").read_text()
    assert "run aborted: bring-up failed: LinkError" in capsys.readouterr().out
    assert not (out / "run.pid").exists()
