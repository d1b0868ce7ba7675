"""A run's directory: the one place its layout is spelled out, and how a new run claims one.

Everything a run leaves behind lives under one directory, so that a report can be rebuilt from it
alone and `hospital-drill down` can find whatever it left running. Code that reads or writes a part
of it asks `RunDir` for the path instead of spelling the name.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MAX_TRIES = 1000


@dataclass(frozen=True)
class RunDir:
    """The layout of one run directory (or of a stack directory kept up by `hospital-drill stack`,
    which uses the stack's part of it: pids, logs, config, pg, state)."""
    path: Path

    # names, for the few readers that list what a directory holds
    JOURNAL = "journal.jsonl"
    RECORDS = "records"
    LOGS = "logs"
    PIDS = "pids.json"
    ATTACK = "attack"
    PROBES = "probes.jsonl"
    INTEGRITY = "integrity.jsonl"
    DRILL = "drill.yaml"
    SCENARIO = "scenario.yaml"
    SCORE = "score.json"
    CONFIG = "config"
    STATE = "state.json"
    PG = "pg"
    CONTROL = "control.json"
    STEPS = "steps"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def of(cls, where: "RunDir | str | os.PathLike[str]") -> "RunDir":
        return where if isinstance(where, RunDir) else cls(Path(where))

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    # --- what the run writes as it goes ------------------------------------------------------------
    @property
    def journal(self) -> Path:
        """Every event, fsynced as written (harness/journal.py, harness/events/)."""
        return self.path / self.JOURNAL

    @property
    def records(self) -> Path:
        """Patients' request records: one `<process>.jsonl` per Locust process."""
        return self.path / self.RECORDS

    @property
    def logs(self) -> Path:
        """Every service's and Locust process's output."""
        return self.path / self.LOGS

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    @property
    def pids(self) -> Path:
        """Every process the run started, name → pid, so `down` finds them after a crash."""
        return self.path / self.PIDS

    @property
    def attack(self) -> Path:
        """The bots of `bot_flood` faults, one directory per fault; never patients' records."""
        return self.path / self.ATTACK

    def attack_of(self, fault_id: str) -> Path:
        return self.attack / fault_id

    def attack_records(self, fault_id: str) -> Path:
        return self.attack_of(fault_id) / self.RECORDS

    @property
    def probes(self) -> Path:
        """The synthetic test-account patient's walks."""
        return self.path / self.PROBES

    @property
    def integrity(self) -> Path:
        """The data ledger's counts of acknowledged rows present and missing, as they change."""
        return self.path / self.INTEGRITY

    @property
    def control(self) -> Path:
        """Where a running drill's control surface listens (`hospital-drill ctl` reads it)."""
        return self.path / self.CONTROL

    @property
    def steps(self) -> Path:
        """What the hospital's own runbook steps wrote: one directory per exec or http step."""
        return self.path / self.STEPS

    def step_output(self, step: str) -> Path:
        return self.steps / step

    # --- the inputs as run -------------------------------------------------------------------------
    @property
    def drill(self) -> Path:
        """The drill as run (`extends` resolved)."""
        return self.path / self.DRILL

    @property
    def scenario(self) -> Path:
        """The scenario as run."""
        return self.path / self.SCENARIO

    # --- the stack's own parts ---------------------------------------------------------------------
    @property
    def config(self) -> Path:
        """The services' config files (local backend)."""
        return self.path / self.CONFIG

    @property
    def state(self) -> Path:
        """A stack kept up between commands: its addresses and nodes."""
        return self.path / self.STATE

    @property
    def pg(self) -> Path:
        """The databases' data directories, or a symlink to where they live."""
        return self.path / self.PG

    # --- what is derived after the run -------------------------------------------------------------
    @property
    def score(self) -> Path:
        """The score card (JSON)."""
        return self.path / self.SCORE

    @property
    def reports(self) -> dict[str, Path]:
        """Every after-action output, by kind."""
        return {"json": self.score, "html": self.path / "report.html", "md": self.path / "report.md",
                "junit": self.path / "junit.xml", "summary": self.path / "summary.txt",
                "charts": self.path / "charts"}

    def screenshot(self, name: str) -> Path:
        return self.path / f"{name}.png"

    # --- questions -----------------------------------------------------------------------------
    def holds_run(self) -> bool:
        """A run was started here (its journal exists)."""
        return self.journal.exists()

    def is_run(self) -> bool:
        """Something a report or a trend can read: a score or at least a journal."""
        return self.score.is_file() or self.journal.is_file()


def claim_run_dir(root: str | Path, name: str, stamp: str,
                  out_dir: str | Path | None = None) -> tuple[str, Path]:
    """(run_id, run_dir) for a run of drill `name` started at `stamp`.

    With `out_dir` the user chose the place (the command line refuses one that holds a run). Without
    it the directory `root/name-stamp` is created here, atomically: mkdir either makes it or fails,
    so when another run got there first this one takes `name-stamp-2`, `-3`, … instead.
    """
    base = f"{name}-{stamp}"
    if out_dir:
        return base, Path(out_dir)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, MAX_TRIES + 1):
        run_id = base if n == 1 else f"{base}-{n}"
        try:
            (root / run_id).mkdir()
        except FileExistsError:
            continue
        return run_id, root / run_id
    raise FileExistsError(f"{MAX_TRIES} runs of {name} at {stamp} already in {root}")
