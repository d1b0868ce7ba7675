"""Trend across drills: per drill and target, the actuals run by run and quarter by quarter, with
regressions flagged.

    hospital-drill trend reports/ [--out DIR] [--threshold 0.2]

Input: run directories, or folders holding them (one level down). A run is read from its
`score.json`, or scored from its journal and records when it has none (or an unreadable one).

Like is compared with like: a run is compared with the previous run of the same drill and target at
the same time scale and time model (run.started's `time_scale` and `time_model`, v1 when absent):
figures measured at another scale or under another time model are not the same measure. Where a
drill's consecutive runs differ so, the pair is listed as not compared, with why (`incomparable`).

Regressions, between such comparable runs:
- `newly_missed`: the target was met and is now missed (or not measured); a target that did not
  apply (n/a) in either run is neither;
- `slower`: a time target's actual grew by more than `threshold` (a share: 0.2 = 20 %) over the
  previous run's (not judged when the previous actual was 0).
`latest_regressions` are those whose newer run is the drill's latest: what a CI gate looks at.

Output in DIR: trend.html (self-contained, inline SVG charts), trend.md (+ charts/trend-*.svg),
trend.csv (one row per run and target).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from ..clock import format_duration
from ..errors import InputError
from ..score.card import ScoreCard
from . import charts as C
from .i18n import pick, RATING, translator

TEMPLATES = Path(__file__).parent / "templates"
MARKS = {"met": "✓", "missed": "✗", "n/a": "n/a"}
COLUMNS = ["drill", "drill_title", "run_id", "run_dir", "started", "date", "quarter", "target", "title",
           "measure", "unit", "critical", "within", "actual", "met", "status", "margin", "rating",
           "verdict", "score", "time_scale", "time_model"]


@dataclass
class TrendResult:
    runs: int
    frame: pd.DataFrame  # one row per run and target (COLUMNS)
    quarters: pd.DataFrame  # (drill, target) × quarter → the quarter's last actual
    regressions: list[dict]
    latest_regressions: list[dict]
    incomparable: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"trend: {self.runs} runs of {self.frame['drill'].nunique() if len(self.frame) else 0} "
               f"drills, {len(self.regressions)} regressions ({len(self.latest_regressions)} in the latest runs)"]
        for r in self.latest_regressions:
            out.append(f"  REGRESSION {r['drill']} {r['target']}: {r['why']}")
        for p in self.incomparable:
            out.append(f"  not compared {p['drill']} {p['from_run']} → {p['to_run']}: {p['why']}")
        for p in self.problems:
            out.append(f"  skipped: {p}")
        if "html" in self.paths:
            out.append(f"trend: {self.paths['html']}")
        return out


# --- reading runs --------------------------------------------------------------------------------

def _is_run(d: Path) -> bool:
    return (d / "score.json").is_file() or (d / "journal.jsonl").is_file()


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories named, or found one level under the folders named (sorted, no repeats)."""
    out: list[Path] = []
    for p in paths:
        if not p.is_dir():
            raise InputError("not a directory", file=str(p))
        if _is_run(p):
            out.append(p)
            continue
        found = sorted(d for d in p.iterdir() if d.is_dir() and _is_run(d))
        if not found:
            raise InputError("neither a run directory nor a folder of run directories", file=str(p))
        out.extend(found)
    seen: set[Path] = set()
    return [d for d in out if not (d.resolve() in seen or seen.add(d.resolve()))]


def load_card(run_dir: Path) -> ScoreCard:
    """The run's score card: its score.json, else scored from its journal and records."""
    score = run_dir / "score.json"
    if score.is_file():
        try:
            return ScoreCard.model_validate_json(score.read_text(encoding="utf-8"))
        except ValueError:
            pass  # an older or damaged score.json: score the run again
    from ..score.build import score_run
    return score_run(run_dir)


def frame_of(cards: list[tuple[Path, ScoreCard]]) -> pd.DataFrame:
    rows = []
    for run_dir, c in cards:
        ov = c.overview
        wall = ov.started_wall or ov.t0_wall
        started = pd.Timestamp(wall, unit="s", tz="UTC").tz_convert(_local_tz()) if wall else pd.NaT
        if pd.isna(started) and ov.date:
            started = pd.Timestamp(ov.date).tz_localize(_local_tz())
        for r in c.targets:
            rows.append({
                "drill": ov.drill, "drill_title": ov.drill_title, "run_id": ov.run_id or run_dir.name,
                "run_dir": str(run_dir), "started": started,
                "date": None if pd.isna(started) else started.date().isoformat(),
                "quarter": None if pd.isna(started) else f"{started.year}Q{(started.month - 1) // 3 + 1}",
                "target": r.id, "title": r.title, "measure": r.measure, "unit": r.unit,
                "critical": r.critical, "within": r.target, "actual": r.actual, "met": r.met,
                "status": r.status, "margin": r.margin, "rating": r.rating, "verdict": c.verdict,
                "score": c.score, "time_scale": float(ov.time_scale), "time_model": ov.time_model or "v1"})
    df = pd.DataFrame(rows, columns=COLUMNS)
    if len(df):
        df = df.sort_values(["drill", "target", "started", "run_id"], kind="stable").reset_index(drop=True)
    return df


def _local_tz():
    return dt.datetime.now().astimezone().tzinfo


# --- the analysis --------------------------------------------------------------------------------

def why_not_comparable(before: tuple[float, str], after: tuple[float, str]) -> str | None:
    """Why two runs' figures are not the same measure ((time_scale, time_model) each), or None."""
    (scale_a, model_a), (scale_b, model_b) = before, after
    why = []
    if model_a != model_b:
        why.append(f"time model {model_a} → {model_b}")
    if scale_a != scale_b:
        why.append(f"time scale ×{scale_a:g} → ×{scale_b:g}")
    return ", ".join(why) or None


def find_regressions(df: pd.DataFrame, threshold: float) -> list[dict]:
    """Each run against the previous one of its drill and target at the same time scale and time
    model: met → missed, or a time grown by > threshold."""
    if not len(df):
        return []
    d = _like_columns(df)
    g = d.groupby(["drill", "target", "time_scale", "time_model"], sort=False)
    d["prev_status"] = g["status"].shift(1)
    d["prev_actual"] = g["actual"].shift(1)
    d["prev_run"] = g["run_id"].shift(1)
    d["prev_date"] = g["date"].shift(1)
    out = []
    for row in d[d["prev_run"].notna()].itertuples(index=False):
        base = {"drill": row.drill, "target": row.target, "from_run": row.prev_run, "to_run": row.run_id,
                "from_date": row.prev_date, "to_date": row.date, "before": _num(row.prev_actual),
                "after": _num(row.actual), "unit": row.unit}
        if row.prev_status == "met" and row.status == "missed":
            out.append({**base, "kind": "newly_missed",
                        "why": f"met in {row.prev_run}, missed in {row.run_id}"
                               f" ({_show(row.prev_actual, row.unit)} → {_show(row.actual, row.unit)})",
                        "growth": None})
            continue
        before, after = _num(row.prev_actual), _num(row.actual)
        if row.unit == "s" and before and after is not None and before > 0 and after > before * (1 + threshold):
            growth = after / before - 1
            out.append({**base, "kind": "slower", "growth": round(growth, 4),
                        "why": f"{_show(before, 's')} → {_show(after, 's')} (+{growth:.0%}, more than "
                               f"{threshold:.0%}) from {row.prev_run} to {row.run_id}"})
    return out


def _like_columns(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with what comparing needs: status (from met when absent), time scale (0: unknown, all
    alike) and time model (v1 when absent); no NaN in the keys, which groupby would drop."""
    d = df.copy()
    if "status" not in d:
        d["status"] = d["met"].map(lambda m: "met" if m is True else "missed")
    d["time_scale"] = d["time_scale"].fillna(0.0) if "time_scale" in d else 0.0
    d["time_model"] = d["time_model"].fillna("v1") if "time_model" in d else "v1"
    return d


def incomparable_pairs(df: pd.DataFrame) -> list[dict]:
    """A drill's consecutive runs at a different time scale or time model: not compared, and why;
    `compared_with` is the earlier run the newer one was compared with instead (None: none)."""
    out: list[dict] = []
    if not len(df):
        return out
    runs = _like_columns(df).drop_duplicates(["drill", "run_id"])
    runs = runs.sort_values(["drill", "started", "run_id"], kind="stable")
    for drill, d in runs.groupby("drill", sort=True):
        rows = list(d.itertuples(index=False))
        for i in range(1, len(rows)):
            prev, cur = rows[i - 1], rows[i]
            why = why_not_comparable((prev.time_scale, prev.time_model), (cur.time_scale, cur.time_model))
            if why is None:
                continue
            like = next((r.run_id for r in reversed(rows[:i]) if r.time_scale == cur.time_scale
                         and r.time_model == cur.time_model), None)
            out.append({"drill": drill, "from_run": prev.run_id, "to_run": cur.run_id,
                        "from_date": prev.date, "to_date": cur.date, "compared_with": like,
                        "why": f"{why}: figures are not measured alike, so they are not compared"})
    return out


def _num(x) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def _show(v, unit: str) -> str:
    v = _num(v)
    if v is None:
        return "—"
    return f"L{v:g}" if unit == "level" else format_duration(v)


def quarter_table(df: pd.DataFrame) -> pd.DataFrame:
    """(drill, target) × quarter → the actual of the quarter's last run (NaN where none)."""
    if not len(df) or df["quarter"].isna().all():
        return pd.DataFrame()
    last = df.dropna(subset=["quarter"]).sort_values("started").groupby(
        ["drill", "target", "quarter"], sort=True).tail(1)
    table = last.pivot_table(index=["drill", "target"], columns="quarter", values="actual",
                             aggfunc="last", dropna=False)
    return table.reindex(sorted(table.columns), axis=1)


# --- the output ----------------------------------------------------------------------------------

def trend_charts(df: pd.DataFrame, lang: str) -> dict[str, C.Chart]:
    """Per drill: each time target's actual as a share of its target, run by run (100 % = the target)."""
    t = translator(lang)
    out: dict[str, C.Chart] = {}
    for drill, d in df.groupby("drill", sort=True):
        d = d[(d["unit"] == "s") & d["within"].notna() & (d["within"] > 0)]
        runs = d.drop_duplicates("run_id").sort_values("started")
        if runs.empty:
            continue
        index = {run: i for i, run in enumerate(runs["run_id"])}
        lines = []
        for i, (target, rows) in enumerate(d.groupby("target", sort=False)):
            pts = [(index[r.run_id], None if _num(r.actual) is None else 100 * r.actual / r.within)
                   for r in rows.itertuples(index=False)]
            lines.append(C.Line(str(target), sorted(pts), color=C.PALETTE[i % len(C.PALETTE)]))
        ticks = [(i, str(r.date or r.run_id)) for i, r in enumerate(runs.itertuples(index=False))]
        if len(ticks) > 8:  # label every n-th run
            step = -(-len(ticks) // 8)
            ticks = ticks[::step]
        top = max([y for ln in lines for _, y in ln.points if y is not None] + [100.0])
        out[str(drill)] = C.line_chart(
            lines, title=f"{drill}: {t('t_chart')}", desc=t("t_chart_desc"), y_title="%",
            x_title=t("t_runs"), x_range=(-0.3, max(len(index) - 0.7, 0.7)), y_range=(0, top * 1.1),
            y_format=lambda v: f"{v:g}%", thresholds=[C.Threshold(100, t("t_target_line"))],
            x_ticks=ticks, dots=True, legend=False)
    return out


def write_trend(paths: list[Path], out_dir: Path, *, threshold: float = 0.2,
                lang: str = "zh") -> TrendResult:
    if threshold < 0:
        raise InputError("must be >= 0", field="--threshold")
    runs = find_runs(paths)
    cards, problems = [], []
    for run in runs:
        try:
            cards.append((run, load_card(run)))
        except (InputError, OSError, ValueError) as e:
            problems.append(f"{run}: {e}")
    if not cards:
        raise InputError("no readable run among them", file=", ".join(str(p) for p in paths))
    df = frame_of(cards)
    regs = find_regressions(df, threshold)
    incomparable = incomparable_pairs(df)
    latest = df.sort_values("started").groupby("drill")["run_id"].last().to_dict() if len(df) else {}
    latest_regs = [r for r in regs if latest.get(r["drill"]) == r["to_run"]]
    quarters = quarter_table(df)
    result = TrendResult(runs=len(cards), frame=df, quarters=quarters, regressions=regs,
                         latest_regressions=latest_regs, incomparable=incomparable, problems=problems)
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = trend_charts(df, lang)
    (out_dir / "charts").mkdir(exist_ok=True)
    for name, chart in charts.items():
        (out_dir / "charts" / f"trend-{_slug(name)}.svg").write_text(chart.standalone(), encoding="utf-8")
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                      autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    t = translator(lang)
    env.filters.update(show=lambda v, unit="s": _show(v, unit), slug=_slug,
                       md=lambda v: "" if v is None else " ".join(str(v).split()).replace("|", "\\|")
                       .replace("<", "&lt;").replace(">", "&gt;"),
                       rating=lambda v: pick(RATING, v, lang), pct=lambda v: "—" if v is None else f"{v:.0%}")
    ctx = dict(t=t, lang=lang, zh=lang == "zh", result=result, threshold=threshold,
               charts=charts, svg=lambda name: Markup(charts[name].svg) if name in charts else "",
               drills=_drill_views(df, quarters), palette=C.PALETTE,
               generated=dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %z"))
    result.paths = {"html": out_dir / "trend.html", "md": out_dir / "trend.md", "csv": out_dir / "trend.csv"}
    result.paths["html"].write_text(env.get_template("trend.html.j2").render(**ctx), encoding="utf-8")
    result.paths["md"].write_text(env.get_template("trend.md.j2").render(**ctx), encoding="utf-8")
    df.assign(started=df["started"].astype(str)).to_csv(result.paths["csv"], index=False)
    return result


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in str(name))


def _drill_views(df: pd.DataFrame, quarters: pd.DataFrame) -> list[dict]:
    """Per drill, what the templates show: runs (rows of actuals per target) and the quarter table."""
    views = []
    for drill, d in df.groupby("drill", sort=True):
        targets = list(dict.fromkeys(d["target"]))
        units = {r.target: r.unit for r in d.itertuples(index=False)}
        within = {r.target: _num(r.within) for r in d.itertuples(index=False)}
        titles = {r.target: r.title for r in d.itertuples(index=False)}
        runs = []
        for run_id, rows in d.sort_values("started").groupby("run_id", sort=False):
            first = rows.iloc[0]
            cells = {r.target: {"actual": _num(r.actual), "met": bool(r.met), "rating": r.rating,
                                "status": r.status, "mark": MARKS.get(r.status, "✗")}
                     for r in rows.itertuples(index=False)}
            runs.append({"run_id": run_id, "date": first["date"], "quarter": first["quarter"],
                         "verdict": first["verdict"], "score": int(first["score"]), "cells": cells,
                         "time_scale": float(first["time_scale"]), "time_model": first["time_model"]})
        q_rows = []
        if len(quarters):
            sub = quarters.loc[drill] if drill in quarters.index.get_level_values(0) else None
            if sub is not None:
                for target in targets:
                    if target in sub.index:
                        q_rows.append({"target": target,
                                       "values": [_num(v) for v in sub.loc[target].tolist()]})
        views.append({"drill": drill, "title": d["drill_title"].iloc[0], "targets": targets,
                      "units": units, "within": within, "titles": titles, "runs": runs,
                      "quarters": list(quarters.columns) if len(quarters) else [], "quarter_rows": q_rows})
    return views
