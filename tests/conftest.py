import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# an event that does not fit its declared model (harness/events/) raises in tests, in this
# process and in the drills they start
os.environ.setdefault("HD_STRICT_EVENTS", "1")


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def drill_copy(tmp_path):
    """A writable copy of the default drill and its scenario, for tests that break them."""
    (tmp_path / "drills").mkdir()
    (tmp_path / "scenarios").mkdir()
    shutil.copy(ROOT / "drills" / "db-crash-failover.yaml", tmp_path / "drills")
    shutil.copy(ROOT / "scenarios" / "db-crash.yaml", tmp_path / "scenarios")
    return tmp_path / "drills" / "db-crash-failover.yaml"


@pytest.fixture
def whole_drill_copy(drill_copy):
    """The db-crash drill written whole (its own runbook and targets, no failure class): the text
    the validation tests break, step by step."""
    drill_copy.write_text((ROOT / "tests" / "unit" / "data" / "db-crash-whole.yaml").read_text(encoding="utf-8"),
                          encoding="utf-8")
    return drill_copy
