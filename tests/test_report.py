"""``ray-diffnas report``: the HTML report of a search whose driver was killed mid-run, opened in a real
headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by Selenium): no console
errors, one leaderboard row per trial, every image decodes, the leaderboard sorts."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a real search, killed; then a browser

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# Where the screenshot is kept for a person to look at (the test's tmp_path is removed).
SCREENSHOT_ENV = "RAY_DIFFNAS_REPORT_SCREENSHOT"


def _reported_trials(tune_folder: Path) -> int:
    return sum(1 for path in tune_folder.glob("*/result.json") if path.read_text().strip())


@pytest.fixture(scope="module")
def killed_search(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real search (graph searcher) killed with SIGKILL, driver and Ray, once three trials have reported."""
    out = tmp_path_factory.mktemp("report") / "search"
    command = [
        sys.executable, "-m", "ray_diffnas", "search", "--dataset", "digits", "--num-samples", "6",
        "--max-iterations", "2", "--steps-per-iteration", "15", "--rfid-samples", "100", "--sampler-steps", "3",
        "--output", str(out), "--seed", "2",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    driver = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 400
        while _reported_trials(out / "tune") < 3 and time.monotonic() < deadline:
            assert driver.poll() is None, "the search ended before it could be killed"
            time.sleep(0.5)
        assert _reported_trials(out / "tune") >= 3, "no three trials reported in time"
        time.sleep(2)  # Tune saves its experiment state every few seconds
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    assert not (out / "results.parquet").exists()  # the driver never got to write it
    return out


def test_report_rebuilds_the_leaderboard_of_a_killed_search(killed_search: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "ray_diffnas", "report", str(killed_search), "--samples", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "running or stopped" in run.stdout and "Report:" in run.stdout
    html = (killed_search / "report.html").read_text()
    assert "http://" not in html and "https://" not in html  # self-contained: nothing loads from elsewhere
    for section in ("Leaderboard", "RFID over training", "Samples of the best models", "The best UNet"):
        assert section in html
    # Every trial the searcher proposed is there with its architecture and proposer, also the ones in flight
    # at the kill (Tune kept no config for a trial that had not started: the memory knows it).
    from ray_diffnas.searchers.memory import SearchMemory

    memory, _ = SearchMemory.load(killed_search / "tune" / "search-memory.parquet")
    saved = _tune_trial_ids(killed_search)
    for record in memory.records():
        if record.trial_id not in saved:  # proposed after Tune's last save: Tune brings it back on a resume
            continue
        assert f"<td>{record.trial_id}</td><td>{record.proposer}</td>" in re.sub(r' data-sort="[^"]*"', "", html)
        assert record.arch_key in html


def test_the_report_opens_in_a_real_browser(killed_search: Path, tmp_path: Path) -> None:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (.ci/run installs them with apt-get; "
            "by hand: apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    report = killed_search / "report.html"
    if not report.exists():
        subprocess.run([sys.executable, "-m", "ray_diffnas", "report", str(killed_search)], check=True, timeout=300)
    trials = len(_tune_trial_ids(killed_search))

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1600",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(report.as_uri())
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        rows = driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
        assert len(rows) == trials
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0]);"
        )
        assert len(images) >= 4 and all(decoded for _, decoded in images), images
        # Sorting by latency (a click on its heading) puts the rows in latency order.
        headings = driver.find_elements(By.CSS_SELECTOR, "#leaderboard thead th")
        column = [h.text for h in headings].index("latency ms")
        headings[column].click()
        rows = driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
        texts = [row.find_elements(By.TAG_NAME, "td")[column].text for row in rows]
        numeric = [t for t in texts if t != "-"]
        assert texts == numeric + ["-"] * (len(texts) - len(numeric))  # a trial that never reported: last
        assert [float(t) for t in numeric] == sorted(float(t) for t in numeric)
        # A column of words sorts as words (it did not sort at all: every word counted as missing).
        column = [h.text for h in headings].index("status")
        headings[column].click()
        rows = driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
        statuses = [row.find_elements(By.TAG_NAME, "td")[column].text for row in rows]
        assert statuses == sorted(statuses) and len(set(statuses)) > 1, statuses
        shot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "report.png")
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 50_000
    finally:
        driver.quit()


def _tune_trial_ids(search: Path) -> set[str]:
    """Trials in Tune's saved experiment state (the ones the report can know of)."""
    state = sorted((search / "tune").glob("experiment_state-*.json"))[-1]
    return {json.loads(trial[0])["trial_id"] for trial in json.loads(state.read_text())["trial_data"]}
