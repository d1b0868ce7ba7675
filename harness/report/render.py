"""The after-action report (演练总结): score card → score.json, report.html, report.md, junit.xml.

Templates are jinja2 with autoescape on for HTML; every value from a drill file or the journal is
user text. The HTML is self-contained (inline CSS, no external assets) so it can be mailed or archived.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..clock import format_duration
from ..score.scorecard import ScoreCard, TargetResult

TEMPLATES = Path(__file__).parent / "templates"
VERDICT_TITLES = {"pass": "通过 PASS", "fail": "未通过 FAIL", "aborted": "中止 ABORTED"}
SEVERITY_TITLES = {"high": "高 high", "medium": "中 medium", "low": "低 low"}


def _clock(wall: float | None, with_date: bool = False) -> str:
    if wall is None:
        return "—"
    dt = datetime.fromtimestamp(wall).astimezone()  # the machine's local time, offset shown once
    return dt.strftime("%Y-%m-%d %H:%M:%S %z") if with_date else dt.strftime("%H:%M:%S.%f")[:-3]


def _pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x * 100:.{digits}f}%"


def _md(value: object) -> str:
    """User text inside a Markdown table cell: one line, no pipes, no raw HTML."""
    text = "" if value is None else " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _at(seconds: float | None, mark: str = "F") -> str:
    """Drill seconds from the fault → 'F+4m10s' (F−… before it); T± when times count from T+0."""
    if seconds is None:
        return "—"
    return mark + ("−" if seconds < 0 else "+") + format_duration(abs(seconds))


def _environment(card: ScoreCard) -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                      autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    scale = card.overview.time_scale
    env.filters.update(
        dur=format_duration,
        real=lambda s: "—" if s is None else format_duration(s / scale),  # drill s → wall s
        # the card counts from T+0 when no fault was injected
        at=lambda s: _at(s, "F" if card.overview.fault_wall is not None else "T"), clock=_clock, pct=_pct, md=_md, num=lambda x: f"{x:g}",
        mark=lambda ok: "—" if ok is None else ("✓" if ok else "✗"))
    env.globals.update(VERDICT_TITLES=VERDICT_TITLES, SEVERITY_TITLES=SEVERITY_TITLES,
                       summary=summary_line(card))
    return env


def _target_text(r: TargetResult) -> str:
    mark = "✓" if r.met else "✗"
    if r.unit == "level":
        show = lambda v: "—" if v is None else f"L{int(v)}"  # noqa: E731
        return f"{r.id} {show(r.actual)}/{show(r.target)} {mark}"
    return f"{r.id} {format_duration(r.actual)}/{format_duration(r.target)} {mark}"


def summary_line(card: ScoreCard) -> str:
    """One line for CI logs: 'db-crash-failover: FAIL 72/100 — detect 12s/1m ✓, dr-takeover 4m10s/3m ✗'."""
    parts = ", ".join(_target_text(r) for r in card.targets)
    return f"{card.overview.drill}: {card.verdict.upper()} {card.score}/100 — {parts}"


def junit_xml(card: ScoreCard) -> ET.ElementTree:
    """One testsuite, one testcase per target; a missed target is a <failure> carrying its reason."""
    ov = card.overview
    failures = [r for r in card.targets if not r.met]
    real = None
    if ov.started_wall is not None and ov.ended_wall is not None:
        real = max(0.0, ov.ended_wall - ov.started_wall)
    suite = ET.Element("testsuite", name=f"drill.{ov.drill}", tests=str(len(card.targets)),
                       failures=str(len(failures)), errors="0", skipped="0",
                       time=f"{real or 0:.3f}")
    props = ET.SubElement(suite, "properties")
    for name, value in (("verdict", card.verdict), ("score", card.score), ("time_scale", ov.time_scale),
                        ("scenario", ov.scenario), ("run_id", ov.run_id), ("status", ov.status)):
        ET.SubElement(props, "property", name=name, value="" if value is None else str(value))
    for r in card.targets:
        case = ET.SubElement(suite, "testcase", classname=f"{ov.drill}.{r.measure}", name=r.id,
                             time="0")
        line = _target_text(r) + (" (critical)" if r.critical else "") + (f" — {r.title}" if r.title else "")
        if not r.met:
            kind = "unmeasured" if r.actual is None else "missed"
            fail = ET.SubElement(case, "failure", message=r.reason or kind, type=kind)
            fail.text = line
        ET.SubElement(case, "system-out").text = line
    if ov.abort_reason:
        ET.SubElement(suite, "system-err").text = f"run aborted: {ov.abort_reason}"
    ET.indent(suite)
    return ET.ElementTree(suite)


def write_reports(run_dir: Path | str, card: ScoreCard) -> dict[str, Path]:
    """Write score.json, report.html, report.md and junit.xml into run_dir; return their paths."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    env = _environment(card)
    out = {"json": run_dir / "score.json", "html": run_dir / "report.html",
           "md": run_dir / "report.md", "junit": run_dir / "junit.xml"}
    out["json"].write_text(card.model_dump_json(indent=2), encoding="utf-8")
    out["html"].write_text(env.get_template("report.html.j2").render(card=card), encoding="utf-8")
    out["md"].write_text(env.get_template("report.md.j2").render(card=card), encoding="utf-8")
    junit_xml(card).write(out["junit"], encoding="utf-8", xml_declaration=True)
    return out
