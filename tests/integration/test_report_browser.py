"""The after-action report as a person sees it: rendered by headless Chromium, on a desktop and a
phone, its sections laid out and its charts drawn (checked in the screenshot's pixels).

Screenshots are kept in the run directory (report.png, report-phone.png). Set
HOSPITAL_DRILL_BROWSER_RUN=RUN_DIR to also check a real run's report and keep its screenshots there.
Skips, saying why, where Chromium is not installed (apt-get install -y chromium).
"""
from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import pytest

from harness.report import browser
from harness.report.render import write_reports
from harness.score.scorecard import score_run

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(browser.find_chromium() is None,
                       reason="headless Chromium not installed (apt-get install -y chromium)"),
]

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ["overview", "summary", "timeline", "analysis", "impact", "findings", "appendix"]
GREEN, ORANGE, BLUE = (0x2e, 0x7d, 0x32), (0xef, 0x6c, 0x00), (0x15, 0x65, 0xc0)

LAYOUT = """
const box = el => { const r = el.getBoundingClientRect();
  return {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height}; };
const charts = [...document.querySelectorAll('figure.chart')].map(f => {
  const svg = f.querySelector('svg'); const b = box(svg); const s = getComputedStyle(svg);
  const wrap = f.querySelector('.chart-wrap');
  svg.scrollIntoView({block: 'center'});  // hit-testing works inside the viewport only
  const r = svg.getBoundingClientRect();
  const hit = document.elementFromPoint(Math.min(r.left + r.width / 2, innerWidth - 5), r.top + r.height / 2);
  return {id: f.id, box: b, visible: s.display !== 'none' && s.visibility !== 'hidden' && b.w > 0 && b.h > 0,
          series: svg.querySelectorAll('polyline.series, rect.bar').length,
          wrapScrolls: wrap.scrollWidth > wrap.clientWidth + 1,
          topmost: !!(hit && hit.closest('figure') === f)}; });
const sections = Object.fromEntries([...document.querySelectorAll('section[id]')].map(
  s => [s.id, s.offsetHeight]));
scrollTo(0, 0);
return {charts, sections, innerWidth, scrollWidth: document.documentElement.scrollWidth,
        height: document.documentElement.scrollHeight,
        tables: document.querySelectorAll('table').length,
        findings: document.querySelectorAll('#findings tr[id^="F"]').length,
        lang: document.documentElement.lang, fontPx: parseFloat(getComputedStyle(document.body).fontSize)};
"""


def read_png(path: Path, max_rows: int | None = None) -> tuple[int, int, int, list[bytearray]]:
    """(width, height, channels, rows) of Chromium's 8-bit RGB(A) PNG, decoded up to max_rows."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    assert depth == 8 and interlace == 0 and ctype in (2, 6), (depth, ctype, interlace)
    ch = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * ch
    rows, prev = [], bytearray(stride)
    for y in range(h if max_rows is None else min(h, max_rows)):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(ch, stride):
                line[i] = (line[i] + line[i - ch]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - ch] if i >= ch else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - ch] if i >= ch else 0
                b, c = prev[i], (prev[i - ch] if i >= ch else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else (b if pb <= pc else c))) & 255
        rows.append(line)
        prev = line
    return w, h, ch, rows


def count_colour(rows, ch: int, box: dict, rgb: tuple[int, int, int], tol: int = 30) -> int:
    x0, x1 = int(box["x"]) + 1, int(box["x"] + box["w"]) - 1
    y0, y1 = int(box["y"]) + 1, min(int(box["y"] + box["h"]) - 1, len(rows))
    n = 0
    for y in range(y0, y1):
        row = rows[y]
        for x in range(x0, x1):
            i = x * ch
            if abs(row[i] - rgb[0]) <= tol and abs(row[i + 1] - rgb[1]) <= tol and abs(row[i + 2] - rgb[2]) <= tol:
                n += 1
    return n


def synthetic_run(run_dir: Path) -> Path:
    """A DB-crash run at ×60: patients failing for 40 drill s, a failed step with the address in its
    error, an alert, link samples, lost writes."""
    import yaml
    from harness.validate import load_drill
    loaded = load_drill(ROOT / "drills" / "db-crash-failover.yaml")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "drill.yaml").write_text(yaml.safe_dump(loaded.drill_data, allow_unicode=True), encoding="utf-8")
    (run_dir / "scenario.yaml").write_text(yaml.safe_dump(loaded.scenario_data, allow_unicode=True),
                                           encoding="utf-8")
    t0, fault = 1_790_000_000.0, 1_790_000_004.0
    rows = [(-3, "run.started", {"run_id": "browser-check", "drill_name": "db-crash-failover",
                                 "scenario": "db-crash", "failure_class": "database", "time_scale": 60,
                                 "backend": "local", "live": False, "config": loaded.drill_data["stack"]}),
            (0, "scenario.started", {}),
            (3.9, "steady_state", {"ok": True, "error_rate": 0.0, "requests": 200, "p95_ms": 7}),
            (4, "fault.injected", {"fault": "primary-db-crash", "fault_type": "db_crash", "target": "pg-primary"}),
            (4.13, "alert.raised", {"alert": "db_unreachable", "severity": "critical",
                                    "describe": "the app reports its database unreachable"}),
            (4.14, "step.started", {"step": "three-step-check", "group": "technical", "kind": "auto",
                                    "action": "three_step_check"}),
            (4.15, "step.finished", {"step": "three-step-check", "group": "technical", "kind": "auto", "ok": True}),
            (4.2, "level.declared", {"level": 1, "affected": 20, "active": 24, "share": 0.83}),
            (4.21, "step.started", {"step": "promote-same-city", "group": "technical", "kind": "auto",
                                    "action": "promote_standby"}),
            (4.3, "step.finished", {"step": "promote-same-city", "group": "technical", "kind": "auto",
                                    "ok": False, "detail": {"error": "backup insurance interface "
                                                                     "127.0.0.9:18090 refused connection"}}),
            (4.31, "notification.sent", {"channel": "app_banner", "audience": "patients", "text": "维护中"}),
            (4.7, "recovery", {"at_wall": fault + 0.65}),
            (4.8, "alert.cleared", {"alert": "db_unreachable"}),
            (9.0, "rpo.measured", {"mode": "async", "acked_writes": 400, "lost_writes": 12, "lost_sample": ["w1"],
                                   "lost_seconds": 25.0, "crash_wall": fault}),
            (10.0, "run.finished", {"status": "completed"})]
    rows += [(i * 0.5, "link.sample", {"link": "egress-primary", "utilisation": 0.4 + 0.03 * i,
                                       "bytes_per_s": 5e5}) for i in range(20)]
    rows.sort(key=lambda r: r[0])
    with open(run_dir / "journal.jsonl", "w", encoding="utf-8") as fh:
        for seq, (at, type_, fields) in enumerate(rows, 1):
            fh.write(json.dumps({"seq": seq, "wall": t0 + at, "drill": at * 60 if at >= 0 else None,
                                 "type": type_, **fields}, ensure_ascii=False) + "\n")
    (run_dir / "records").mkdir(exist_ok=True)
    with open(run_dir / "records" / "local.jsonl", "w", encoding="utf-8") as fh:
        for i in range(2400):
            t = t0 - 0.5 + i * 0.0045
            down = fault <= t <= fault + 0.65
            fh.write(json.dumps({"t": t, "ms": 3000.0 if down else 5.0 + (i % 17), "patient": f"P{i % 24:05d}",
                                 "journey": ["followup", "consultation", "payment", "exam"][i % 4],
                                 "ok": not down, "write_id": f"w{i}" if i % 3 == 0 else None}) + "\n")
    return run_dir


def check_report(run_dir: Path, *, expect_links: bool) -> dict:
    html = run_dir / "report.html"
    # the DOM Chromium built: every section, the charts as SVG, nothing fetched
    dom = browser.dump_dom(html)
    for sid in SECTIONS:
        assert f'id="{sid}"' in dom, sid
    assert dom.count("<svg") >= 4 and "<polyline" in dom
    # desktop: laid out, every chart visible, on top, and wide
    desk = browser.probe(html, LAYOUT, width=1280)
    assert desk["lang"] == "zh-CN" and desk["tables"] >= 10
    assert all(desk["sections"][s] > 50 for s in SECTIONS), desk["sections"]
    ids = [c["id"] for c in desk["charts"]]
    assert {"chart-success", "chart-latency", "chart-rps", "chart-response"} <= set(ids)
    assert ("chart-links" in ids) == expect_links
    for c in desk["charts"]:
        assert c["visible"] and c["topmost"] and c["series"] > 0, c
        assert c["box"]["w"] >= 900 and c["box"]["h"] >= 150, c
        assert not c["wrapScrolls"], c
    assert desk["scrollWidth"] <= desk["innerWidth"] + 1  # no sideways scrolling on a desktop
    # phone: readable text, no page-wide sideways scrolling; charts scroll inside their frames
    phone = browser.probe(html, LAYOUT, width=390, height=800)
    assert phone["scrollWidth"] <= phone["innerWidth"] + 1, (phone["scrollWidth"], phone["innerWidth"])
    assert phone["fontPx"] >= 12
    for c in phone["charts"]:
        assert c["visible"] and c["box"]["w"] >= 550 and c["wrapScrolls"], c
    # what a person sees: screenshots of the whole page, kept with the run; the charts' pixels drawn
    png = browser.screenshot(html, run_dir / "report.png", width=1280, height=min(desk["height"], 16384))
    browser.screenshot(html, run_dir / "report-phone.png", width=390,
                       height=min(phone["height"], 16384))
    by_id = {c["id"]: c for c in desk["charts"]}
    last = max(c["box"]["y"] + c["box"]["h"] for c in desk["charts"])
    w, h, ch, rows = read_png(png, max_rows=int(last) + 2)
    assert w == 1280 and h >= last
    assert count_colour(rows, ch, by_id["chart-success"]["box"], GREEN) > 300  # the success line
    assert count_colour(rows, ch, by_id["chart-latency"]["box"], ORANGE) > 150  # p95
    assert count_colour(rows, ch, by_id["chart-rps"]["box"], BLUE) > 150  # requests per second
    top = rows[: int(by_id["chart-success"]["box"]["y"])]
    assert len({bytes(r[i:i + 3]) for r in top[::40] for i in range(0, len(r), 3 * 37)}) > 5  # not blank
    assert (run_dir / "report-phone.png").stat().st_size > 20_000
    return desk


def test_report_renders_in_chromium(tmp_path):
    run = synthetic_run(tmp_path / "run")
    card = score_run(run)
    assert any("127.0.0.9:18090" in f.evidence for f in card.findings)
    write_reports(run, card)
    desk = check_report(run, expect_links=True)
    assert desk["findings"] == len(card.findings) >= 4
    print(f"screenshots: {run / 'report.png'} {run / 'report-phone.png'}")


@pytest.mark.skipif(not os.environ.get("HOSPITAL_DRILL_BROWSER_RUN"),
                    reason="set HOSPITAL_DRILL_BROWSER_RUN=RUN_DIR to check a real run's report")
def test_a_real_runs_report_renders_in_chromium():
    run = Path(os.environ["HOSPITAL_DRILL_BROWSER_RUN"])
    card = score_run(run)
    write_reports(run, card)
    check_report(run, expect_links=bool(card.links))
    print(f"screenshots: {run / 'report.png'} {run / 'report-phone.png'}")

