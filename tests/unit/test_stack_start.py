"""A stack's bring-up cleans up after itself: what a failed start had begun is torn down, once, and
the start's own error is the one that goes on."""
from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.models import StackConfig
from harness.stack import backends
from harness.stack.base import Stack


class Recorded(Stack):
    """A stack whose parts are a list: bring-up appends, teardown empties it."""

    backend = "recorded"

    def __init__(self, tmp_path, down_fails: bool = False):
        super().__init__(tmp_path, StackConfig(), 60)
        self.started: list[str] = []
        self.downs = 0
        self.down_fails = down_fails

    def down(self) -> None:
        self.downs += 1
        self.started.clear()
        if self.down_fails:
            raise HarnessError("teardown: container app-primary: engine gone")

    def _kill_db(self, name):
        raise NotImplementedError

    def _promote_db(self, name):
        raise NotImplementedError

    def _start_db(self, name):
        raise NotImplementedError

    def _kill_service(self, name):
        raise NotImplementedError

    def _start_service(self, name):
        raise NotImplementedError


def test_a_start_that_succeeds_keeps_what_it_started(tmp_path):
    stack = Recorded(tmp_path)
    with stack.starting() as s:
        s.started += ["toxiproxy", "pg-primary"]
    assert stack.started == ["toxiproxy", "pg-primary"] and stack.downs == 0


@pytest.mark.parametrize("failure", [HarnessError("pg-samecity not streaming after 60s"),
                                     KeyboardInterrupt()])
def test_a_failed_or_interrupted_start_tears_down_what_had_started(tmp_path, failure):
    stack = Recorded(tmp_path)
    with pytest.raises(type(failure)) as raised:
        with stack.starting():
            stack.started += ["toxiproxy", "pg-primary"]
            raise failure
    assert raised.value is failure
    assert stack.started == [] and stack.downs == 1


def test_a_teardown_that_fails_too_does_not_hide_why_the_start_failed(tmp_path):
    stack = Recorded(tmp_path, down_fails=True)
    with pytest.raises(HarnessError, match="not streaming") as raised:
        with stack.starting():
            raise HarnessError("pg-samecity not streaming after 60s")
    assert stack.downs == 1
    assert raised.value.__notes__ == [
        "teardown after the failed start: teardown: container app-primary: engine gone"]


def test_both_backends_are_found_by_name_and_bring_up_through_the_stack():
    from harness.stack import local
    from harness.stack.docker import stack as docker_stack
    assert backends.get("local").up is local.up
    assert backends.get("docker").up is docker_stack.up
    assert backends.get("docker").tear_down_dir.__module__ == "harness.stack.docker.cleanup"
    with pytest.raises(Exception, match="unknown backend 'podman'"):
        backends.get("podman")
