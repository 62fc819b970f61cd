"""The app in a real browser: Debian's Chromium driven by Playwright against `streamlit run app.py`.

The run also saves the screenshots the README shows (assets/screenshots/)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "assets" / "screenshots"
CHROMIUM = os.environ.get("EXPLORER_CHROMIUM", "/usr/bin/chromium")
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless",
         "true", "--browser.gatherUsageStats", "false"], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not start within 60 s")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture(scope="module")
def page(app_url):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        page.wait_for_selector(IDLE, timeout=90_000)
        yield page
        browser.close()


def test_moving_the_eps_slider_changes_the_verdict(page):
    alerts = page.get_by_test_id("stAlert")
    expect(alerts.filter(has_text="now 3")).to_have_count(1, timeout=60_000)  # triplet, PGD, eps 0.30
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "attack.png", full_page=True)
    slider = page.get_by_test_id("stSlider").get_by_role("slider")
    slider.focus()
    slider.press("Home")  # eps 0: nothing can flip
    expect(alerts.filter(has_text="still 7")).to_have_count(2, timeout=30_000)
    expect(alerts.filter(has_text="now")).to_have_count(0)


def test_the_budget_page_draws_its_charts(page):
    page.get_by_test_id("stSidebarNav").get_by_text("Epsilon budget").click()
    charts = page.locator(".js-plotly-plot")
    expect(charts).to_have_count(2, timeout=60_000)
    page.wait_for_selector(IDLE)
    page.set_viewport_size({"width": 1400, "height": 1500})  # the page scrolls inside its own container
    page.screenshot(path=SCREENSHOTS / "budget.png")
