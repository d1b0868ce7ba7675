"""Looking at a report as a person would: headless Chromium, a screenshot and the rendered DOM.

Chromium runs with a new, empty profile each time and with everything that would reach the network
switched off; the report needs nothing from the network anyway. As root it needs --no-sandbox.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_ENV = "HOSPITAL_DRILL_CHROMIUM"
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--hide-scrollbars", "--mute-audio")


def find_chromium() -> str | None:
    """The Chromium binary: $HOSPITAL_DRILL_CHROMIUM, else the first of NAMES on PATH."""
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return explicit if Path(explicit).exists() or shutil.which(explicit) else None
    return next((p for p in map(shutil.which, NAMES) if p), None)


def _run(html: Path, extra: list[str], timeout: float, binary: str | None) -> subprocess.CompletedProcess:
    binary = binary or find_chromium()
    if binary is None:
        raise FileNotFoundError("no Chromium found (apt-get install -y chromium, or set "
                                f"{CHROMIUM_ENV})")
    with tempfile.TemporaryDirectory(prefix="hd-chromium-") as profile:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *extra, Path(html).resolve().as_uri()]
        # own session: a timeout kills Chromium's helper processes too, by its process group
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.communicate()
            raise
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def screenshot(html: Path, png: Path, *, width: int = 1280, height: int = 2400,
               timeout: float = 90, binary: str | None = None) -> Path:
    """A PNG of the page at width × height CSS pixels."""
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    if png.exists():
        png.unlink()
    p = _run(html, [f"--screenshot={png}", f"--window-size={width},{height}"], timeout, binary)
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot (exit {p.returncode}): {p.stderr[-800:]}")
    return png


def dump_dom(html: Path, *, width: int = 1280, height: int = 2400, timeout: float = 90,
             binary: str | None = None) -> str:
    """The DOM after the page loaded (and ran its scripts, if any), serialised."""
    p = _run(html, ["--dump-dom", f"--window-size={width},{height}",
                    "--virtual-time-budget=5000"], timeout, binary)
    if p.returncode != 0 or "<html" not in p.stdout:
        raise RuntimeError(f"chromium --dump-dom failed (exit {p.returncode}): {p.stderr[-800:]}")
    return p.stdout


PROBE_ID = "hd-probe"
MAX_HEIGHT = 16384  # Chromium's largest screenshot side


def probe(html: Path, script: str, *, width: int = 1280, height: int = 900, timeout: float = 90,
          binary: str | None = None) -> object:
    """Run `script` (JavaScript whose last expression is a JSON-serialisable value) in the page
    once loaded, and return that value. The page itself is not changed: the script goes into a
    copy beside it (so relative links resolve the same), removed afterwards."""
    import json
    import re
    html = Path(html)
    text = html.read_text(encoding="utf-8")
    probe_js = (f'<pre id="{PROBE_ID}" style="display:none"></pre><script>'
                f"document.getElementById('{PROBE_ID}').textContent = JSON.stringify((function () {{"
                f"{script}\n}})());</script>")
    copy = html.with_name(f".{html.stem}.probe.html")
    copy.write_text(text.replace("</body>", probe_js + "</body>", 1), encoding="utf-8")
    try:
        dom = dump_dom(copy, width=width, height=height, timeout=timeout, binary=binary)
    finally:
        copy.unlink(missing_ok=True)
    m = re.search(rf'<pre id="{PROBE_ID}"[^>]*>(.*?)</pre>', dom, re.S)
    if not m:
        raise RuntimeError("the probe script left no result")
    from html import unescape
    return json.loads(unescape(m.group(1)))


def page_height(html: Path, width: int = 1280, **kw) -> int:
    """The page's full height in CSS pixels at this width."""
    return int(probe(html, "return document.documentElement.scrollHeight;", width=width, **kw))


def full_page_screenshot(html: Path, png: Path, *, width: int = 1280, **kw) -> Path:
    """A PNG of the whole page at this width (up to MAX_HEIGHT pixels tall)."""
    height = min(max(page_height(html, width, **kw), 200), MAX_HEIGHT)
    return screenshot(html, png, width=width, height=height, **kw)
