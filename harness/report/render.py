"""The after-action report / improvement plan (演练总结与改进计划), modelled on the exercise AAR/IP
of emergency management (HSEEP): overview, executive summary, timeline, analysis per objective,
patient impact, findings and improvement plan, appendix.

score card → score.json, report.html, report.md, junit.xml, summary.txt and charts/*.svg.

Templates are jinja2 with autoescape on for HTML; every value from a drill file or the journal is
user text. The HTML is one self-contained file: inline CSS and inline SVG charts generated here, no
scripts, fonts or images fetched, readable on a phone and printable. Chinese by default, or English.
"""
from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, FunctionLoader, StrictUndefined
from markupsafe import Markup

from ..clock import format_duration
from ..score.card import ScoreCard, TargetResult
from ..score.findings import DUE_DAYS
from ..score.policy import RATING_P, RATING_RULE, RATING_S
from ..score.texts import actual_text, group_name
from . import charts as C
from .sections import CHAPTERS, Chapter, Section, partial_source
from .i18n import (CAPABILITY, FAILURE_CLASS, KIND, LANGS, MEASURE, RATING, SEVERITY, STATUS, VERDICT,
                   pick, translator)

TEMPLATES = Path(__file__).parent / "templates"
VERDICT_TITLES = {"pass": "通过 PASS", "fail": "未通过 FAIL", "aborted": "中止 ABORTED"}
SEVERITY_TITLES = {"critical": "严重 critical", "high": "高 high", "medium": "中 medium", "low": "低 low"}
CHART_ORDER = ("success", "latency", "rps", "response", "links", "writes", "lag")
GROUP_COLORS = {"technical": "#1565c0", "clinical_support": "#2e7d32",
                "patient_communication": "#00838f"}
RATING_RULE_ZH = (f"P：达成且余量不少于指标的 {RATING_P:.0%}（指标为 0 时恰好达成；定级指标达成）；"
                  f"S：达成，余量 {RATING_S:.0%}–{RATING_P:.0%}；M：达成，余量少于 {RATING_S:.0%}；"
                  f"U：未达成或未能测得。")


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


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _precise(seconds: float) -> str:
    """A figure's part to the tenth of a second (the hundredth below one second), so that a figure
    and its parts add up to the eye: '1m0.4s = 59.8s + 0.63s'."""
    sign, s = ("-" if seconds < 0 else ""), abs(seconds)
    if s == 0:
        return "0s"
    if s < 1:
        return f"{sign}{s:.2f}s"
    tenths = int(round(s * 10))
    m, sec = divmod(tenths, 600)
    h, m = divmod(m, 60)
    sec_text = f"{sec // 10}s" if sec % 10 == 0 else f"{sec / 10:.1f}s"
    return sign + (f"{h}h" if h else "") + (f"{m}m" if m else "") + (sec_text if sec or not (h or m) else "")


def figure_parts(r: TargetResult, t) -> str:
    """'1m0.4s = 59.8s declared waits + 0.63s real work' for a figure measured along its causal
    chain; '' when it has no breakdown (not measured, a v1 journal, RPO, a level)."""
    b = r.breakdown
    if r.actual is None or not b or "declared" not in b or "real" not in b:
        return ""
    return t("figure_parts", actual=_precise(r.actual), declared=_precise(b["declared"]),
             real=_precise(b["real"]))


def _target_text(r: TargetResult) -> str:
    mark = {"met": "✓", "n/a": "n/a"}.get(r.status, "✗")
    if r.unit == "level":
        show = lambda v: "—" if v is None else f"L{int(v)}"  # noqa: E731
        return f"{r.id} {show(r.actual)}/{show(r.target)} {mark}"
    modeled = " modeled" if r.modeled else ""  # a simulated operator's time is never shown as measured
    return f"{r.id} {actual_text(r.actual, r.target)}{modeled}/{format_duration(r.target)} {mark}"


def summary_line(card: ScoreCard) -> str:
    """One line for CI logs: 'db-crash-failover: FAIL 72/100 — detect 12s/1m ✓, dr-takeover 4m10s/3m ✗'."""
    parts = ", ".join(_target_text(r) for r in card.targets)
    ov = card.overview  # a live drill's figures at another scale than 1 say so
    scale = f" (live, figures at ×{ov.time_scale:g})" if ov.live and ov.time_scale != 1 else ""
    return f"{ov.drill}: {card.verdict.upper()} {card.score}/100{scale} — {parts}"


# --- charts --------------------------------------------------------------------------------------

def _tplus(card: ScoreCard, wall: float | None) -> float | None:
    origin = card.series.origin_wall or card.overview.t0_wall
    if wall is None or origin is None:
        return None
    return (wall - origin) * card.overview.time_scale


def chart_markers(card: ScoreCard, lang: str) -> list[C.Marker]:
    """The events the charts mark, numbered in time order: fault, alerts, level, steps finished,
    faults reverted, recovery."""
    zh = lang == "zh"
    out: list[C.Marker] = []
    for e in card.timeline:
        x = _tplus(card, e.wall)
        if x is None:
            continue
        s = e.subject or ""
        if e.type == "fault.injected":
            out.append(C.Marker(x, "fault", f"故障 {s} 注入" if zh else f"fault {s} injected"))
        elif e.type == "alert.raised":
            out.append(C.Marker(x, "alert", f"告警 {s}" if zh else f"alert {s}"))
        elif e.type == "level.declared":
            out.append(C.Marker(x, "level", (e.text_zh if zh else e.text).split("（")[0].split(" (")[0]))
        elif e.type == "step.finished":
            if e.ok:
                out.append(C.Marker(x, "step", f"步骤 {s} 完成" if zh else f"step {s} done"))
            else:
                text = e.text_zh if zh and e.text_zh else e.text
                out.append(C.Marker(x, "step_failed", text if len(text) <= 160 else text[:159] + "…"))
        elif e.type == "fault.reverted":
            out.append(C.Marker(x, "revert", f"故障 {s} 撤销" if zh else f"fault {s} reverted"))
    rec = _tplus(card, card.overview.recovery_wall)
    if rec is not None:
        out.append(C.Marker(rec, "recovery", "恢复：患者服务恢复正常（探测与错误率均恢复）" if zh else
                            "recovery: test journey and patients' error rate good again"))
    out.sort(key=lambda m: m.x)
    for i, m in enumerate(out, 1):
        m.number = i
    return out


@dataclass
class _TimeAxis:
    """What every time chart of a report shares: the x range, the marked events, the incident band."""
    x_range: tuple[float, float]
    markers: list[C.Marker]
    bands: list[C.Band]
    desc: str
    x_title: str

    def line(self, lines: list[C.Line], **kw) -> C.Chart:
        return C.line_chart(lines, desc=self.desc, x_title=self.x_title, x_range=self.x_range,
                            markers=self.markers, bands=self.bands, **kw)


def build_charts(card: ScoreCard, lang: str = "zh") -> dict[str, C.Chart]:
    """Every chart the report shows, by name (only those with data)."""
    t = translator(lang)
    pts = card.series.points
    markers = chart_markers(card, lang)
    fault = _tplus(card, card.overview.fault_wall)
    rec = _tplus(card, card.overview.recovery_wall)
    end = max([p.t + card.series.bucket for p in pts] + [m.x for m in markers] + [0.0]
              + [p.t + card.series.bucket for ln in card.links for p in ln.points]
              + [p.t for r in card.replication for p in r.points])
    bands = [C.Band(fault, rec if rec is not None else end, label=t("incident"))] if fault is not None else []
    fr = _TimeAxis((min([0.0] + [p.t for p in pts]), end), markers, bands,
                t("chart_desc", bucket=format_duration(card.series.bucket)), t("x_title"))
    out: dict[str, C.Chart] = _patient_charts(card, t, fr) if pts else {}
    gantt = _gantt(card, lang, markers)
    if gantt is not None:
        out["response"] = gantt
    if card.links:
        out["links"] = fr.line(
            [C.Line(ln.link, [(p.t, None if p.utilisation is None else p.utilisation * 100)
                              for p in ln.points], color=C.PALETTE[i % len(C.PALETTE)])
             for i, ln in enumerate(card.links)],
            title=t("c_links"), y_title="%", y_range=(0, 100), y_format=lambda v: f"{v:g}%",
            thresholds=[C.Threshold(95, t("threshold95"))])
    if card.rpo is not None or card.overview.failure_class == "database":
        writes = _writes_chart(card, t, fr)
        if writes is not None:
            out["writes"] = writes
    if card.replication and any(p.lag_seconds is not None for r in card.replication for p in r.points):
        out["lag"] = fr.line([C.Line(r.standby, [(p.t, p.lag_seconds) for p in r.points],
                                     color=C.PALETTE[i % len(C.PALETTE)])
                              for i, r in enumerate(card.replication)],
                             title=t("c_lag"), y_title="s")
    return out


def _patient_charts(card: ScoreCard, t, fr: _TimeAxis) -> dict[str, C.Chart]:
    """Success rate, latency and request rate over the run."""
    pts = card.series.points
    per_s = card.series.bucket_real
    return {
        "success": fr.line(
            [C.Line(t("success"), [(p.t, None if p.success_rate is None else p.success_rate * 100)
                                   for p in pts], color="#2e7d32")],
            title=t("c_success"), y_title="%", y_range=(0, 100), y_format=lambda v: f"{v:g}%"),
        "latency": fr.line(
            [C.Line("p50", [(p.t, p.p50_ms) for p in pts], color="#1565c0"),
             C.Line("p95", [(p.t, p.p95_ms) for p in pts], color="#ef6c00")],
            title=t("c_latency"), y_title="ms", log=True, y_format=lambda v: f"{v:g}"),
        "rps": fr.line(
            [C.Line(t("total_rps"), [(p.t, p.rps) for p in pts], color="#1565c0"),
             C.Line(t("failed_rps"), [(p.t, round(p.failed / per_s, 3) if per_s else None) for p in pts],
                    color="#c62828")],
            title=t("c_rps"), y_title="req/s"),
    }


def _writes_chart(card: ScoreCard, t, fr: _TimeAxis) -> C.Chart | None:
    """Acknowledged writes per bucket, with the window whose writes were lost."""
    pts = card.series.points
    if not any(p.acked_writes for p in pts):
        return None
    bands = list(fr.bands)
    rpo = card.rpo
    crash = _tplus(card, rpo.crash_wall) if rpo else None
    if rpo and crash is not None and rpo.lost_seconds:
        bands.append(C.Band(crash - rpo.lost_seconds, crash, color="#6d4c41", opacity=0.3,
                            label=t("lost_window")))
    return C.bar_chart([(p.t, p.acked_writes) for p in pts], card.series.bucket, title=t("c_writes"),
                       desc=fr.desc, y_title=t("acked"), x_title=fr.x_title, x_range=fr.x_range,
                       markers=fr.markers, bands=bands, legend=t("acked"), color="#5c6bc0")


def _gantt(card: ScoreCard, lang: str, markers: list[C.Marker]) -> C.Chart | None:
    t = translator(lang)
    zh = lang == "zh"
    rows: list[C.GanttRow] = []
    fault = _tplus(card, card.overview.fault_wall)
    rec = _tplus(card, card.overview.recovery_wall)
    if fault is not None:
        rows.append(C.GanttRow(t("incident"), fault, rec, color="#8d6e63", ok=None,
                               note=f"{format_duration(fault)} → {format_duration(rec)}"))
    for a in card.alerts:
        rows.append(C.GanttRow(f"{'告警' if zh else 'alert'} {a.alert}", _tplus(card, a.raised_wall),
                               _tplus(card, a.cleared_wall), color="#ef6c00", ok=None,
                               note=a.detail or ""))
    for s in card.steps:
        if s.started_wall is None and s.finished_wall is None:
            continue
        start = _tplus(card, s.started_wall)
        rows.append(C.GanttRow(
            s.id, start, _tplus(card, s.finished_wall), color=GROUP_COLORS.get(s.group or "", "#546e7a"),
            ok=s.ok, deadline=None if s.deadline is None or start is None else start + s.deadline,
            note=f"{group_name(s.group, lang)} · {pick(STATUS, s.status, lang)}"
                 + (f" · {s.error}" if s.error else "")))
    if len(rows) <= (1 if fault is not None else 0):
        return None
    xs = [v for r in rows for v in (r.start, r.end) if v is not None]
    lo, hi = min(xs), max(xs)
    pad = max((hi - lo) * 0.04, card.series.bucket or 1.0)
    near = [m for m in markers if lo - pad <= m.x <= hi + pad]
    return C.gantt_chart(rows, title=t("c_gantt"), desc=t("chart_desc", bucket="—"),
                         x_title=t("x_title"), x_range=(lo - pad, hi + pad), markers=near)


# --- the files -----------------------------------------------------------------------------------

def _environment(card: ScoreCard, lang: str, charts: dict[str, C.Chart]) -> Environment:
    # a section's partial escapes like HTML; its md macro turns that off for its own body
    # a plugin's section brings its own partial; every other template is in the package's folder
    loader = ChoiceLoader([FunctionLoader(partial_source), FileSystemLoader(TEMPLATES)])
    env = Environment(loader=loader, undefined=StrictUndefined,
                      autoescape=lambda name: bool(name) and (name.endswith(".html.j2")
                                                              or name.startswith("sections/")),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    scale = card.overview.time_scale
    t = translator(lang)
    zh = lang == "zh"

    def loc(obj: object, name: str) -> str:
        """A bilingual field of the card: `name_zh` in Chinese when it has one."""
        if zh:
            v = getattr(obj, f"{name}_zh", "")
            if v:
                return v
        return getattr(obj, name)

    env.filters.update(
        dur=format_duration, vs=actual_text,
        real=lambda s: "—" if s is None else format_duration(s / scale),  # drill s → wall s
        # the card counts from T+0 when no fault was injected
        at=lambda s: _at(s, "F" if card.overview.fault_wall is not None else "T"),
        tplus=lambda s: "—" if s is None else _at(s, "T"),
        clock=_clock, pct=_pct, md=_md, num=lambda x: f"{x:g}", size=_size,
        parts=lambda r: figure_parts(r, t),
        mark=lambda ok: "—" if ok is None else ("✓" if ok else "✗"),
        group=lambda g: group_name(g, lang), loc=loc,
        verdict=lambda v: pick(VERDICT, v, lang), severity=lambda v: pick(SEVERITY, v, lang),
        capability=lambda v: pick(CAPABILITY, v, lang), rating=lambda v: pick(RATING, v, lang),
        status=lambda v: pick(STATUS, v, lang), kind=lambda v: pick(KIND, v, lang),
        measure=lambda v: pick(MEASURE, v, lang),
        result=lambda r: {"met": "✓ " + t("met"), "n/a": "– " + t("n_a")}.get(r.status, "✗ " + t("missed")),
        rclass=lambda r: {"met": "met", "n/a": "na"}.get(r.status, "missed"),
        fclass=lambda v: "—" if not v else (f"{FAILURE_CLASS.get(v, v)} ({v})" if zh else v),
        level=lambda v: "—" if v is None else (f"{['一', '二', '三'][int(v) - 1]}级" if zh and v in (1, 2, 3)
                                               else f"L{int(v)}"),
        js=lambda v: json.dumps(v, ensure_ascii=False, indent=2, default=str),
    )
    ov = card.overview
    key = [f for f in card.findings if f.kind != "evidence"][:3] or card.findings[:3]
    env.globals.update(
        t=t, lang=lang, zh=zh, summary=summary_line(card), charts=charts,
        svg=lambda name: Markup(charts[name].svg) if name in charts else "",  # generated and escaped here
        markers=chart_markers(card, lang), key_findings=key,
        rating_rule=RATING_RULE_ZH if zh else RATING_RULE, due_days=DUE_DAYS,
        met_count=sum(1 for r in card.targets if r.status == "met"),
        na_count=sum(1 for r in card.targets if r.status == "n/a"),
        with_parts=any(figure_parts(r, t) for r in card.targets), tplus_of=lambda w: _tplus(card, w),
        VERDICT_TITLES=VERDICT_TITLES, SEVERITY_TITLES=SEVERITY_TITLES, group_colors=GROUP_COLORS,
        chart_order=CHART_ORDER,
        incomplete=bool(card.problems) or ov.status != "completed")
    return env


def _chapters(env: Environment, card: ScoreCard, fmt: str) -> list[tuple[Chapter, list[tuple[Section, str]]]]:
    """Each chapter with its sections written in `fmt` (the partials' `html` or `md` macro); a
    section that writes nothing for this card is left out."""
    out = []
    for chapter in CHAPTERS:
        parts = []
        for section in chapter.sections:
            write = getattr(env.get_template(section.template).module, fmt)
            body = write(card, section.value(card)).strip("\n")
            if body.strip():
                parts.append((section, body))
        out.append((chapter, parts))
    return out


def _case_seconds(card: ScoreCard, r: TargetResult, run_seconds: float) -> float:
    """A case's time: the target's measured figure where it is a duration (drill seconds; for a
    level, when it was declared), otherwise (not measured, did not apply) the run's wall time."""
    figure = card.level.declared_at if r.unit == "level" else r.actual
    if isinstance(figure, (int, float)) and math.isfinite(figure):
        return max(0.0, float(figure))
    return run_seconds


def junit_xml(card: ScoreCard) -> ET.ElementTree:
    """One testsuite, one testcase per target; a missed target is a <failure> carrying its reason,
    a target that did not apply (n/a) is <skipped> with why.

    A run that did not complete (aborted, halted, or no end in its journal) is an <error> of its own
    case, `run`, so that CI shows it as broken and not as passed with the targets it got to."""
    ov = card.overview
    failures = [r for r in card.targets if r.status == "missed"]
    skipped = [r for r in card.targets if r.status == "n/a"]
    broken = ov.status != "completed" or bool(ov.abort_reason)
    real = 0.0  # the run's wall time, start to end (0 when the journal lacks either)
    if ov.started_wall is not None and ov.ended_wall is not None:
        real = max(0.0, ov.ended_wall - ov.started_wall)
    suite = ET.Element("testsuite", name=f"drill.{ov.drill}", tests=str(len(card.targets) + broken),
                       failures=str(len(failures)), errors=str(int(broken)), skipped=str(len(skipped)),
                       time=f"{real:.3f}")
    props = ET.SubElement(suite, "properties")
    for name, value in (("verdict", card.verdict), ("score", card.score), ("time_scale", ov.time_scale),
                        ("scenario", ov.scenario), ("run_id", ov.run_id), ("status", ov.status)):
        ET.SubElement(props, "property", name=name, value="" if value is None else str(value))
    if broken:
        reason = ov.abort_reason or f"run {ov.status}"
        case = ET.SubElement(suite, "testcase", classname=f"{ov.drill}.run", name="run",
                             time=f"{real:.3f}")
        ET.SubElement(case, "error", message=reason, type=ov.status).text = f"run {ov.status}: {reason}"
    for r in card.targets:
        case = ET.SubElement(suite, "testcase", classname=f"{ov.drill}.{r.measure}", name=r.id,
                             time=f"{_case_seconds(card, r, real):.3f}")
        line = (_target_text(r) + (" (critical)" if r.critical else "") + f" rating {r.rating}"
                + (f" — {r.title}" if r.title else ""))
        if r.status == "n/a":  # did not apply to this run: skipped, with why
            ET.SubElement(case, "skipped", message=r.reason or "not applicable").text = line
        elif r.status == "missed":
            kind = "unmeasured" if r.actual is None else "missed"
            fail = ET.SubElement(case, "failure", message=r.reason or kind, type=kind)
            fail.text = line
        ET.SubElement(case, "system-out").text = line
    if ov.abort_reason:
        ET.SubElement(suite, "system-err").text = f"run aborted: {ov.abort_reason}"
    ET.indent(suite)
    return ET.ElementTree(suite)


def write_reports(run_dir: Path | str, card: ScoreCard, lang: str = "zh") -> dict[str, Path]:
    """Write score.json, report.html, report.md, junit.xml, summary.txt and charts/*.svg into
    run_dir; return their paths (charts under 'charts')."""
    if lang not in LANGS:
        raise ValueError(f"unknown report language {lang!r} (known: {', '.join(LANGS)})")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    charts = build_charts(card, lang)
    env = _environment(card, lang, charts)
    out = {"json": run_dir / "score.json", "html": run_dir / "report.html",
           "md": run_dir / "report.md", "junit": run_dir / "junit.xml",
           "summary": run_dir / "summary.txt", "charts": run_dir / "charts"}
    out["json"].write_text(card.model_dump_json(indent=2), encoding="utf-8")
    out["charts"].mkdir(exist_ok=True)
    for old in out["charts"].glob("*.svg"):
        old.unlink()
    for name, chart in charts.items():
        (out["charts"] / f"{name}.svg").write_text(chart.standalone(), encoding="utf-8")
    for fmt in ("html", "md"):
        page = env.get_template(f"report.{fmt}.j2").render(card=card, chapters=_chapters(env, card, fmt))
        out[fmt].write_text(page, encoding="utf-8")
    junit_xml(card).write(out["junit"], encoding="utf-8", xml_declaration=True)
    out["summary"].write_text(summary_line(card) + "\n", encoding="utf-8")
    return out
