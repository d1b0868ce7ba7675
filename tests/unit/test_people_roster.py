"""The roster: who is absent (named, or drawn from a seed, reproducibly) and who is next in line."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.models import People, RunbookStep
from harness.people.roster import Roster
from harness.validate import load_drill

SHIPPED = Path(__file__).resolve().parents[2] / "harness" / "catalog" / "drills" / "db-crash-failover.yaml"


@pytest.fixture(scope="module")
def drill():
    return load_drill(SHIPPED).drill  # the hospital plan's roster: 3 groups of 5 core + 3 backup


def with_people(drill, **people):
    return drill.model_copy(update={"people": People(**people)})


def step(needs: str | None, group: str = "technical") -> RunbookStep:
    return RunbookStep.model_validate({"id": "s", "group": group, "when": {"alert": "any"},
                                       "action": "promote_standby", "needs": needs})


def test_everyone_of_the_plan_is_on_the_roster_with_tier_and_phone(drill):
    roster = Roster.of(drill)
    assert len(roster.people) == 24 and not roster.absent
    li = roster.get("李娜")
    assert (li.group, li.tier, li.phone, li.location) == ("technical", "core", "138-0000-0102", "同城灾备中心")
    assert roster.get("杨帆").tier == "backup"


def test_a_named_absence_takes_the_dba_out_and_her_backup_is_next(drill):
    roster = Roster.of(with_people(drill, absent=["李娜"]))
    assert [(p.name, p.absent) for p in roster.absent] == [("李娜", "named")]
    assert [p.name for p in roster.next_in_line(step("PostgreSQL"))] == ["杨帆"]
    assert "absent" in roster.refusal(roster.get("李娜"), step("PostgreSQL"))
    assert roster.refusal(roster.get("杨帆"), step("PostgreSQL")) is None
    # present, but without the skill, or of another group
    assert "lacks" in roster.refusal(roster.get("张伟"), step("PostgreSQL"))
    assert "is in clinical_support" in roster.refusal(roster.get("周医生"), step("PostgreSQL"))


def test_with_both_dbas_absent_nobody_is_in_line_and_the_roster_says_why(drill):
    roster = Roster.of(with_people(drill, absent=["李娜", "杨帆"]))
    assert roster.next_in_line(step("PostgreSQL")) == []
    assert roster.unable(step("PostgreSQL")) == ("nobody present in technical with 'PostgreSQL' "
                                                 "(absent: 李娜, 杨帆)")


def test_drawn_absences_are_the_same_for_the_same_seed(drill):
    first = Roster.of(with_people(drill, absent=["李娜"], absent_drawn=4, seed=11))
    again = Roster.of(with_people(drill, absent=["李娜"], absent_drawn=4, seed=11))
    other = Roster.of(with_people(drill, absent=["李娜"], absent_drawn=4, seed=12))
    drawn = [p.name for p in first.absent if p.absent == "drawn"]
    assert len(drawn) == 4 and "李娜" not in drawn
    assert drawn == [p.name for p in again.absent if p.absent == "drawn"]
    assert drawn != [p.name for p in other.absent if p.absent == "drawn"]
    assert first.seed == 11


def test_a_draw_without_a_seed_keeps_the_one_it_drew_so_it_can_be_repeated(drill):
    first = Roster.of(with_people(drill, absent_drawn=3))
    assert isinstance(first.seed, int)
    again = Roster.of(with_people(drill, absent_drawn=3, seed=first.seed))
    assert [p.name for p in first.absent] == [p.name for p in again.absent]


def test_core_before_backup_then_nearest_first(drill):
    # 网络: 张伟 core at 主数据中心 (60 s), 赵强 backup at 远程 (30 s): core first all the same
    near = {"主数据中心": 60, "同城灾备中心": 300, "远程": 30, "异地灾备中心": 1800}
    roster = Roster.of(with_people(drill, call_out=near))
    assert [p.name for p in roster.next_in_line(step("网络"))] == ["张伟", "赵强"]  # core first
    # no skill asked: the whole group, core by call-out (远程 30 < 主数据中心 60 < 同城 300), then backup
    assert [p.name for p in roster.next_in_line(step(None))] == [
        "刘洋", "王磊", "张伟", "陈静", "李娜", "赵强", "黄敏", "杨帆"]
    roster = Roster.of(with_people(drill, absent=["张伟"], call_out=near))
    assert [p.name for p in roster.next_in_line(step("网络"))] == ["赵强"]
    assert roster.call_out(roster.get("杨帆")) == 1800
    assert Roster.of(with_people(drill)).call_out(roster.get("杨帆")) == 120  # the default


def test_a_role_counts_as_what_a_step_needs(drill):
    roster = Roster.of(with_people(drill, absent=["王磊"]))
    assert [p.name for p in roster.next_in_line(step("技术组长"))] == ["黄敏"]  # 运维 (备) / 技术组长 (备)
