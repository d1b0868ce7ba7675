"""Runs started together without --out each get a run directory of their own."""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.rundir import claim_run_dir


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
