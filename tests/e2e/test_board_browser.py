"""The command board in headless Chromium, driven by Selenium as people in the room would use it.

A live drill at ×30 (tests/e2e/drills/board-live.yaml): its two manual steps are claimed and completed
on the board as named people (the absent nurse's backup takes hers), an observer note is added, and the
report lists who did what and when. A second live drill is halted with the board's button: every fault
is reverted and the exit is 3. Screenshots of the board at 1280 and 390 px wide are kept in each run's
directory. Skips, saying why, without Chromium, Debian's chromium-driver or selenium
(apt-get install -y chromium chromium-driver; pip install selenium).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.journal import read_journal
from harness.report import browser as report_browser
from tests.helpers import assert_nothing_left, port_open

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # the skip below says so
    webdriver = None

ROOT = Path(__file__).resolve().parents[2]
DRILL = ROOT / "tests" / "e2e" / "drills" / "board-live.yaml"
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = report_browser.find_chromium()

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(webdriver is None, reason="selenium not installed (pip install selenium)"),
    pytest.mark.skipif(CHROMEDRIVER is None, reason="chromedriver not installed (apt-get install -y chromium-driver)"),
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install -y chromium)"),
]


@pytest.fixture
def browser(monkeypatch):
    monkeypatch.setenv("SE_OFFLINE", "true")  # the driver is Debian's: nothing is fetched
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-extensions", "--hide-scrollbars", "--window-size=1280,1000"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def start_live(out: Path) -> tuple[subprocess.Popen, Path]:
    """The live drill at ×30 in the background; its console goes to a file (a pipe could fill up)."""
    console = out.parent / f"{out.name}-console.txt"
    fh = console.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(DRILL), "--live",
                             "--time-scale", "30", "--board-port", "0", "--out", str(out), "--lang", "en"],
                            cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, text=True)
    fh.close()
    return proc, console


def stop(proc: subprocess.Popen) -> None:
    """A run still going when a check failed: SIGTERM (it tears its stack down), then SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_event(proc, out: Path, console: Path, type_: str, timeout: float = 180, **match) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        for e in read_journal(out / "journal.jsonl").events:  # torn last lines are skipped
            if e["type"] == type_ and all(e.get(k) == v for k, v in match.items()):
                return e
        assert proc.poll() is None, f"the run ended ({proc.returncode}) before {type_}:\n" + console.read_text()[-4000:]
        assert time.monotonic() < deadline, f"no {type_} {match} within {timeout}s"
        time.sleep(0.1)


def until(driver, check, timeout: float = 120, what: str = ""):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: check(d), message=what)


def step_card(driver, step: str):
    return driver.find_element(By.CSS_SELECTOR, f'.step[data-step="{step}"]')


def act(driver, step: str, verb: str, text: str = "") -> None:
    card = step_card(driver, step)
    button = card.find_element(By.CSS_SELECTOR, f'button[data-move="{verb}"]')
    until(driver, lambda d: button.is_enabled(), what=f"{step}: {verb} never enabled")
    if text:
        box = card.find_element(By.CSS_SELECTOR, "input")
        box.clear()
        box.send_keys(text)
    button.click()


def as_person(driver, name: str) -> None:
    Select(driver.find_element(By.ID, "me")).select_by_value(name)


def screenshots(driver, out: Path) -> dict[int, dict]:
    """The whole board at 1280 px (a projector) and 390 px wide (a phone, emulated as one: headless
    windows have a minimum width), kept in the run directory; what each width laid out."""
    seen = {}
    for width, phone in ((1280, False), (390, True)):
        screen = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": phone}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", screen)
        time.sleep(0.6)  # a render tick
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**screen, "height": min(height, 6000)})
        time.sleep(0.3)
        driver.save_screenshot(str(out / f"board-{width}.png"))
        seen[width] = driver.execute_script(
            "return {inner: innerWidth, scroll: document.documentElement.scrollWidth,"
            " columns: getComputedStyle(document.querySelector('main')).gridTemplateColumns.split(' ').length}")
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return seen


def test_people_claim_and_complete_steps_on_the_board(tmp_path, browser):
    out = tmp_path / "run"
    proc, console = start_live(out)
    try:
        board = wait_for_event(proc, out, console, "board.started")
        url = board["url"]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        assert url in console.read_text()  # printed at start
        browser.get(url)
        until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#me option[value="何护士"]'),
              what="the roster never reached the picker")
        absent = browser.find_element(By.CSS_SELECTOR, '#me option[value="吴护士长"]')
        assert not absent.is_enabled() and "absent" in absent.text  # greyed out, not pickable
        assert "absent" in browser.find_element(By.CSS_SELECTOR, 'tr[data-person="吴护士长"]').get_attribute("class")
        assert "×30" in browser.find_element(By.ID, "scale").text

        # the clinical step: the absent core nurse's backup is next in line, and takes it
        until(browser, lambda d: "open" in step_card(d, "offline-reception").get_attribute("class"), timeout=180,
              what="offline-reception never opened")
        assert "何护士" in step_card(browser, "offline-reception").find_element(By.CSS_SELECTOR, ".next").text
        as_person(browser, "何护士")
        act(browser, "offline-reception", "claim")
        until(browser, lambda d: "claimed by 何护士" in step_card(d, "offline-reception").text)
        act(browser, "offline-reception", "done", "offline desk open at the outpatient hall")

        # a move the desk refuses is shown with its one-line reason: the nurse is not in that group
        act(browser, "hotline-callbacks", "claim")
        until(browser, lambda d: "何护士 is in clinical_support" in d.find_element(By.ID, "msg").text,
              what="the desk's refusal never showed")
        as_person(browser, "林专员")
        act(browser, "hotline-callbacks", "claim")
        until(browser, lambda d: "claimed by 林专员" in step_card(d, "hotline-callbacks").text)
        as_person(browser, "observer")
        browser.find_element(By.ID, "note-text").send_keys("hotline staffed before the banner went up")
        browser.find_element(By.ID, "note-send").click()
        until(browser, lambda d: "hotline staffed" in d.find_element(By.ID, "note-list").text)
        until(browser, lambda d: "20" in d.find_element(By.ID, "inject-list").text, timeout=60,
              what="the hotline inject never showed")
        # while the drill is still going (the last step is the people's): load, a claimed step, its clock
        until(browser, lambda d: d.find_element(By.ID, "success").text.endswith("%"), timeout=60,
              what="patient impact never showed")
        assert "left" in step_card(browser, "hotline-callbacks").find_element(By.CSS_SELECTOR, ".due").text
        laid_out = screenshots(browser, out)
        assert laid_out[390]["scroll"] <= laid_out[390]["inner"] + 1, laid_out  # no sideways scrolling
        assert laid_out[390]["columns"] == 1 and laid_out[1280]["columns"] == 3, laid_out

        # 林专员 is blocked (the line is busy): the step is open again, and the backup takes it over
        as_person(browser, "林专员")
        act(browser, "hotline-callbacks", "block", "my line is busy with callers")
        until(browser, lambda d: "blocked" in step_card(d, "hotline-callbacks").get_attribute("class"))
        as_person(browser, "谢专员")
        act(browser, "hotline-callbacks", "claim")
        until(browser, lambda d: "claimed by 谢专员" in step_card(d, "hotline-callbacks").text)
        act(browser, "hotline-callbacks", "done", "20 callers called back")
        until(browser, lambda d: "done" in step_card(d, "hotline-callbacks").get_attribute("class"))
        assert proc.wait(timeout=300) in (0, 1), console.read_text()[-4000:]
    finally:
        stop(proc)

    journal = read_journal(out / "journal.jsonl")
    claims = {e["step"]: e for e in journal.of_type("person.claimed")}  # the last claim of each step
    assert claims["offline-reception"]["person"] == "何护士" and claims["offline-reception"]["tier"] == "backup"
    assert [(e["person"], e["reason"]) for e in journal.of_type("person.blocked")] == [
        ("林专员", "my line is busy with callers")]
    assert [e["person"] for e in journal.of_type("person.claimed") if e["step"] == "hotline-callbacks"] == [
        "林专员", "谢专员"]
    done = {e["step"]: e for e in journal.of_type("person.done")}
    assert done["offline-reception"]["note"] == "offline desk open at the outpatient hall"
    for e in [*claims.values(), *done.values()]:
        assert e["modeled"] is False and e["chain"]["lane"] == f"step:{e['step']}"
    assert all(c["call_out"] >= 0 for c in claims.values())
    assert [e["inject"] for e in journal.of_type("inject.shown")] == ["hotline-callers", "dba-unreachable"]
    assert journal.first("observer.note")["by"] == "observer"
    absent = journal.first("person.absent")
    assert absent["person"] == "吴护士长" and absent["why"] == "named"
    assert (out / "board-1280.png").stat().st_size > 10_000 and (out / "board-390.png").stat().st_size > 10_000
    assert not port_open(url.split("//")[1].rstrip("/")), "the board still listens after the run"

    # the report: who did what, and when
    report = (out / "report.md").read_text(encoding="utf-8")
    for who in ("何护士", "谢专员", "吴护士长"):
        assert who in report, who
    assert "hotline staffed before the banner went up" in report
    line = next(l for l in report.splitlines() if "何护士" in l and "offline-reception" in l)
    assert re.search(r"\d+:\d\d|\d+(\.\d+)?\s*s\b", line), line  # with its time
    up = journal.first("stack.up")
    assert_nothing_left(out, [*up["services"].values(), *up["links"].values()])


def test_halt_on_the_board_reverts_every_fault_and_exits_3(tmp_path, browser):
    out = tmp_path / "run"
    proc, console = start_live(out)
    try:
        board = wait_for_event(proc, out, console, "board.started")
        browser.get(board["url"])
        wait_for_event(proc, out, console, "fault.injected")
        until(browser, lambda d: d.find_element(By.ID, "phase").text == "incident")
        browser.find_element(By.ID, "halt-reason").send_keys("a real patient complaint came in")
        browser.find_element(By.ID, "halt").click()
        confirm = browser.find_element(By.ID, "halt-confirm")
        assert confirm.is_displayed()
        confirm.click()
        until(browser, lambda d: "HALTED" in d.find_element(By.ID, "banner").text, timeout=60,
              what="the board never showed the halt")
        screenshots(browser, out)
        assert proc.wait(timeout=180) == 3, console.read_text()[-4000:]
    finally:
        stop(proc)
    journal = read_journal(out / "journal.jsonl")
    halted = journal.first("run.halted")
    assert halted["safeguard"] == "stop" and "a real patient complaint came in" in halted["reason"]
    injected = {e["fault"] for e in journal.of_type("fault.injected")}
    reverted = {e["fault"] for e in journal.of_type("fault.reverted")}
    assert injected and injected <= reverted
    first_revert = min(e["seq"] for e in journal.of_type("fault.reverted"))
    assert first_revert > halted["seq"]
    assert journal.first("run.finished")["status"] == "aborted"
    assert "run aborted: halted by emergency stop: hospital-drill stop by board" in console.read_text()
    up = journal.first("stack.up")
    assert_nothing_left(out, [*up["services"].values(), *up["links"].values()])
