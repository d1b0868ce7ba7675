"""Charts as inline SVG, generated here (no JavaScript, no fonts or files fetched): they show in
any browser, print, mail and archive with the report.

Every chart is a `<svg viewBox=…>` that scales to its container's width; its title and a text
description are in `<title>`/`<desc>` for screen readers. All text put into the SVG is escaped.

- :func:`line_chart`: lines over the drill-time axis, with shaded bands (the incident), horizontal
  thresholds and numbered event markers (clustered when they fall on the same few pixels);
- :func:`bar_chart`: bars over the drill-time axis (acknowledged writes per bucket);
- :func:`gantt_chart`: one row per runbook step / alert, a bar from start to end, deadline ticks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Callable, Sequence

from ..clock import format_duration

W, H = 720, 250  # the drawing's own units; it scales to the page
PAD_L, PAD_R, PAD_T, PAD_B = 58, 14, 40, 34
FONT = 'font-family="-apple-system,Segoe UI,PingFang SC,Microsoft YaHei,Noto Sans CJK SC,sans-serif"'
COLORS = {"fault": "#c62828", "alert": "#ef6c00", "check": "#6a1b9a", "level": "#6a1b9a",
          "step": "#1565c0", "step_failed": "#c62828", "notification": "#00838f",
          "recovery": "#2e7d32", "revert": "#757575", "other": "#546e7a"}
PALETTE = ("#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037", "#546e7a")
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600,
              43200, 86400)


@dataclass
class Line:
    name: str
    points: Sequence[tuple[float, float | None]]  # (x, y); y None breaks the line
    color: str = PALETTE[0]
    dashed: bool = False
    width: float = 2.0


@dataclass
class Marker:
    x: float
    kind: str  # a key of COLORS
    label: str  # what the legend says
    number: int = 0


@dataclass
class Band:
    x0: float
    x1: float
    color: str = "#c62828"
    opacity: float = 0.08
    label: str = ""


@dataclass
class Threshold:
    y: float
    label: str = ""
    color: str = "#c62828"


@dataclass
class GanttRow:
    label: str
    start: float | None
    end: float | None  # None: still open at the end of the axis
    color: str = PALETTE[0]
    ok: bool | None = True
    deadline: float | None = None  # absolute x of the deadline
    note: str = ""


@dataclass
class Chart:
    """The SVG markup (for inlining in HTML) and the markers the report lists beside it."""
    svg: str
    markers: list[Marker] = field(default_factory=list)
    title: str = ""

    def standalone(self) -> str:
        """The chart as an .svg file (the namespace a file needs; inline SVG in HTML does not)."""
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                + self.svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1) + "\n")


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def time_ticks(x0: float, x1: float, want: int = 8) -> list[float]:
    span = max(x1 - x0, 1e-9)
    step = next((s for s in TIME_STEPS if span / s <= want), TIME_STEPS[-1])
    first = math.ceil(x0 / step) * step
    return [first + i * step for i in range(int((x1 - first) // step) + 1)]


def nice_ticks(lo: float, hi: float, want: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / want
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def time_label(x: float) -> str:
    return ("−" if x < 0 else "") + format_duration(abs(x))


class _Frame:
    def __init__(self, x0: float, x1: float, y0: float, y1: float, log: bool = False,
                 height: int = H, top: int = PAD_T, left: int = PAD_L):
        if x1 <= x0:
            x1 = x0 + 1
        if log:
            y0, y1 = math.log10(max(y0, 1e-9)), math.log10(max(y1, 1e-9))
        if y1 <= y0:
            y1 = y0 + 1
        self.x0, self.x1, self.y0, self.y1, self.log = x0, x1, y0, y1, log
        self.h, self.top, self.left = height, top, left

    def x(self, v: float) -> float:
        return self.left + (v - self.x0) / (self.x1 - self.x0) * (W - self.left - PAD_R)

    def y(self, v: float) -> float:
        if self.log:
            v = math.log10(max(v, 1e-9))
        v = min(max(v, self.y0), self.y1)
        return self.h - PAD_B - (v - self.y0) / (self.y1 - self.y0) * (self.h - PAD_B - self.top)


def _open(title: str, desc: str, height: int) -> list[str]:
    return [f'<svg viewBox="0 0 {W} {height}" class="chart-svg" '
            f'role="img" aria-label="{_e(title)}" preserveAspectRatio="xMidYMid meet" {FONT} font-size="11">',
            f"<title>{_e(title)}</title><desc>{_e(desc)}</desc>",
            f'<rect x="0" y="0" width="{W}" height="{height}" fill="#ffffff"/>']


def _x_axis(out: list[str], f: _Frame, x_title: str,
            ticks: Sequence[tuple[float, str]] | None = None) -> None:
    """Drill-time ticks, or the given (x, label) ticks."""
    base = f.h - PAD_B
    out.append(f'<line x1="{f.left}" y1="{base}" x2="{W - PAD_R}" y2="{base}" stroke="#90a4ae"/>')
    for t, label in ticks if ticks is not None else [(t, time_label(t)) for t in time_ticks(f.x0, f.x1)]:
        x = f.x(t)
        out.append(f'<line x1="{_n(x)}" y1="{base}" x2="{_n(x)}" y2="{base + 4}" stroke="#90a4ae"/>')
        out.append(f'<text x="{_n(x)}" y="{base + 15}" text-anchor="middle" fill="#455a64">'
                   f"{_e(label)}</text>")
    out.append(f'<text x="{W - PAD_R}" y="{f.h - 4}" text-anchor="end" fill="#455a64">{_e(x_title)}</text>')


def _y_axis(out: list[str], f: _Frame, ticks: list[float], fmt: Callable[[float], str],
            y_title: str) -> None:
    for v in ticks:
        y = f.y(v)
        out.append(f'<line x1="{f.left}" y1="{_n(y)}" x2="{W - PAD_R}" y2="{_n(y)}" stroke="#eceff1"/>')
        out.append(f'<text x="{f.left - 5}" y="{_n(y + 4)}" text-anchor="end" fill="#455a64">{_e(fmt(v))}</text>')
    out.append(f'<text x="4" y="{f.top - 8}" fill="#455a64">{_e(y_title)}</text>')


def _bands(out: list[str], f: _Frame, bands: Sequence[Band]) -> None:
    for b in bands:
        x0, x1 = f.x(max(b.x0, f.x0)), f.x(min(b.x1, f.x1))
        if x1 <= x0:
            continue
        out.append(f'<rect x="{_n(x0)}" y="{f.top}" width="{_n(max(x1 - x0, 1))}" '
                   f'height="{f.h - PAD_B - f.top}" fill="{b.color}" fill-opacity="{b.opacity}">'
                   f"<title>{_e(b.label)}</title></rect>")


def _markers(out: list[str], f: _Frame, markers: Sequence[Marker]) -> None:
    """Vertical lines with numbered labels; markers within 14 units share a label ('3–6')."""
    ms = sorted((m for m in markers if f.x0 <= m.x <= f.x1), key=lambda m: (m.x, m.number))
    clusters: list[list[Marker]] = []
    for m in ms:
        if clusters and f.x(m.x) - f.x(clusters[-1][0].x) < 14:
            clusters[-1].append(m)
        else:
            clusters.append([m])
    last_x = [-1e9, -1e9]  # two label rows, so that neighbouring labels do not overlap
    for group in clusters:
        for m in group:
            x = f.x(m.x)
            dash = ' stroke-dasharray="4 3"' if m.kind in ("alert", "notification", "revert") else ""
            out.append(f'<line x1="{_n(x)}" y1="{f.top}" x2="{_n(x)}" y2="{f.h - PAD_B}" '
                       f'stroke="{COLORS.get(m.kind, COLORS["other"])}" stroke-width="1.3"{dash}>'
                       f"<title>{_e(m.number)}. {_e(m.label)}</title></line>")
        nums = [m.number for m in group]
        text = str(nums[0]) if len(nums) == 1 else f"{nums[0]}–{nums[-1]}"
        width = 7 * len(text) + 8
        x = min(max(f.x(group[0].x), width / 2 + 1), W - width / 2 - 1)  # the label stays inside
        row = 0 if x - width / 2 > last_x[0] + 2 else (1 if x - width / 2 > last_x[1] + 2 else 0)
        last_x[row] = x + width / 2
        y = f.top - 24 + row * 13
        color = COLORS.get(group[0].kind, COLORS["other"])
        out.append(f'<rect x="{_n(x - width / 2)}" y="{y - 9}" width="{width}" height="12" rx="3" '
                   f'fill="{color}"/><text x="{_n(x)}" y="{y + 1}" text-anchor="middle" fill="#ffffff" '
                   f'font-size="10">{_e(text)}</text>')


def _legend(out: list[str], lines: Sequence[Line], x: float = PAD_L, y: float | None = None,
            height: int = H) -> None:
    """The lines' names, in the bottom margin on the left (the axis title is on the right)."""
    y = height - 4 if y is None else y
    for ln in lines:
        dash = ' stroke-dasharray="5 3"' if ln.dashed else ""
        out.append(f'<line x1="{_n(x)}" y1="{_n(y - 4)}" x2="{_n(x + 18)}" y2="{_n(y - 4)}" '
                   f'stroke="{ln.color}" stroke-width="3"{dash}/>'
                   f'<text x="{_n(x + 22)}" y="{_n(y)}" fill="#263238">{_e(ln.name)}</text>')
        x += 34 + 6.5 * len(ln.name) + 6 * sum(1 for c in ln.name if ord(c) > 0x2e80)


def _y_range(ys: list[float], log: bool, thresholds: Sequence[Threshold]) -> tuple[float, float]:
    """The y axis that holds the values: whole decades on a log axis, else 0 to 10 % above the top
    (a threshold included)."""
    if log:
        pos = [y for y in ys if y > 0] or [1.0]
        y0 = 10 ** math.floor(math.log10(min(pos)))
        return y0, 10 ** math.ceil(math.log10(max(max(pos), y0 * 10)))
    return 0.0, (max(ys + [t.y for t in thresholds]) * 1.1 if ys else 1.0) or 1.0


def _line(out: list[str], f: _Frame, ln: Line, dots: bool) -> None:
    """One line: a polyline per run of values (a None breaks it), a lone value as a dot."""
    dash = ' stroke-dasharray="6 4"' if ln.dashed else ""
    run: list[str] = []
    segments: list[list[str]] = []
    for x, y in ln.points:
        if y is None:
            if run:
                segments.append(run)
            run = []
            continue
        run.append(f"{_n(f.x(x))},{_n(f.y(y))}")
    if run:
        segments.append(run)
    if dots:
        for x, y in ln.points:
            if y is not None:
                out.append(f'<circle cx="{_n(f.x(x))}" cy="{_n(f.y(y))}" r="3" fill="{ln.color}">'
                           f"<title>{_e(ln.name)}: {_e(_n(y))}</title></circle>")
    for seg in segments:
        if len(seg) == 1:
            cx, cy = seg[0].split(",")
            out.append(f'<circle cx="{cx}" cy="{cy}" r="2.2" fill="{ln.color}"/>')
        else:
            out.append(f'<polyline class="series" points="{" ".join(seg)}" fill="none" '
                       f'stroke="{ln.color}" stroke-width="{ln.width}" stroke-linejoin="round"{dash}/>')


def line_chart(lines: Sequence[Line], *, title: str, desc: str, y_title: str, x_title: str,
               x_range: tuple[float, float] | None = None, y_range: tuple[float, float] | None = None,
               y_format: Callable[[float], str] = _n, log: bool = False,
               markers: Sequence[Marker] = (), bands: Sequence[Band] = (),
               thresholds: Sequence[Threshold] = (), height: int = H,
               x_ticks: Sequence[tuple[float, str]] | None = None, dots: bool = False,
               legend: bool = True) -> Chart:
    """Lines over x (drill time unless `x_ticks` label the axis otherwise); `dots` marks each point."""
    xs = [x for ln in lines for x, _ in ln.points] + [m.x for m in markers]
    x0, x1 = x_range or ((min(xs), max(xs)) if xs else (0.0, 1.0))
    ys = [y for ln in lines for _, y in ln.points if y is not None]
    y0, y1 = y_range if y_range is not None else _y_range(ys, log, thresholds)
    f = _Frame(x0, x1, y0, y1, log=log, height=height)
    out = _open(title, desc, height)
    if log:
        ticks = [10 ** e for e in range(int(round(f.y0)), int(round(f.y1)) + 1)]
    else:
        ticks = nice_ticks(y0, y1)
    _y_axis(out, f, ticks, y_format, y_title)
    _bands(out, f, bands)
    for t in thresholds:
        y = f.y(t.y)
        out.append(f'<line x1="{f.left}" y1="{_n(y)}" x2="{W - PAD_R}" y2="{_n(y)}" stroke="{t.color}" '
                   f'stroke-dasharray="6 4"/><text x="{W - PAD_R - 2}" y="{_n(y - 3)}" text-anchor="end" '
                   f'fill="{t.color}">{_e(t.label)}</text>')
    for ln in lines:
        _line(out, f, ln, dots)
    _markers(out, f, markers)
    _x_axis(out, f, x_title, x_ticks)
    if legend:
        _legend(out, lines, height=height)
    out.append("</svg>")
    return Chart(svg="".join(out), markers=list(markers), title=title)


def bar_chart(bars: Sequence[tuple[float, float]], width: float, *, title: str, desc: str,
              y_title: str, x_title: str, color: str = PALETTE[0], legend: str = "",
              x_range: tuple[float, float] | None = None, markers: Sequence[Marker] = (),
              bands: Sequence[Band] = (), height: int = H) -> Chart:
    """Bars of `width` x-units starting at each x."""
    xs = [x for x, _ in bars] + [x + width for x, _ in bars] + [m.x for m in markers]
    x0, x1 = x_range or ((min(xs), max(xs)) if xs else (0.0, 1.0))
    top = max([v for _, v in bars] + [1.0]) * 1.1
    f = _Frame(x0, x1, 0.0, top, height=height)
    out = _open(title, desc, height)
    _y_axis(out, f, nice_ticks(0, top), lambda v: f"{v:g}", y_title)
    _bands(out, f, bands)
    base = f.y(0)
    for x, v in bars:
        if v <= 0 or x + width < f.x0 or x > f.x1:
            continue
        xa, xb = f.x(max(x, f.x0)), f.x(min(x + width, f.x1))
        out.append(f'<rect class="bar" x="{_n(xa)}" y="{_n(f.y(v))}" width="{_n(max(xb - xa - 0.6, 0.8))}" '
                   f'height="{_n(base - f.y(v))}" fill="{color}"/>')
    _markers(out, f, markers)
    _x_axis(out, f, x_title)
    if legend:
        _legend(out, [Line(legend, [], color=color)], height=height)
    out.append("</svg>")
    return Chart(svg="".join(out), markers=list(markers), title=title)


def gantt_chart(rows: Sequence[GanttRow], *, title: str, desc: str, x_title: str,
                x_range: tuple[float, float] | None = None, markers: Sequence[Marker] = (),
                bands: Sequence[Band] = (), label_width: int = 170) -> Chart:
    """One row per item: a bar from start to end (to the axis end when open), a tick at its deadline."""
    row_h = 20
    height = PAD_T + len(rows) * row_h + PAD_B + 6
    xs = [v for r in rows for v in (r.start, r.end, r.deadline) if v is not None] + [m.x for m in markers]
    x0, x1 = x_range or ((min(xs), max(xs)) if xs else (0.0, 1.0))
    f = _Frame(x0, x1, 0, 1, height=height, left=label_width)
    out = _open(title, desc, height)
    _bands(out, f, bands)
    for i, r in enumerate(rows):
        y = PAD_T + i * row_h
        label = r.label if len(r.label) <= 26 else r.label[:25] + "…"
        out.append(f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end" fill="#263238">'
                   f"{_e(label)}<title>{_e(r.label)}</title></text>")
        if i % 2:
            out.append(f'<rect x="{label_width}" y="{y}" width="{W - PAD_R - label_width}" '
                       f'height="{row_h}" fill="#f5f7f9"/>')
        if r.start is None:
            continue
        xa = f.x(max(r.start, f.x0))
        xb = f.x(min(r.end if r.end is not None else f.x1, f.x1))
        color = r.color if r.ok is not False else COLORS["step_failed"]
        open_ = ' stroke="#263238" stroke-dasharray="3 2"' if r.end is None else ""
        out.append(f'<rect class="bar" x="{_n(xa)}" y="{y + 4}" width="{_n(max(xb - xa, 2.5))}" '
                   f'height="{row_h - 8}" rx="2" fill="{color}"{open_}>'
                   f"<title>{_e(r.label)}: {_e(r.note)}</title></rect>")
        if r.ok is False:
            out.append(f'<text x="{_n(xb + 4)}" y="{y + 14}" fill="{COLORS["step_failed"]}" '
                       f'font-weight="bold">✗</text>')
        if r.deadline is not None and f.x0 <= r.deadline <= f.x1:
            xd = f.x(r.deadline)
            out.append(f'<line x1="{_n(xd)}" y1="{y + 1}" x2="{_n(xd)}" y2="{y + row_h - 1}" '
                       f'stroke="#263238" stroke-width="2"><title>deadline</title></line>')
    _markers(out, f, markers)
    _x_axis(out, f, x_title)
    out.append("</svg>")
    return Chart(svg="".join(out), markers=list(markers), title=title)
