"""The app in a real browser: Debian's Chromium driven by Playwright against `streamlit run app.py`.

The run also saves screenshots: in a temporary folder, or where $EXPLORER_SCREENSHOTS says (assets/screenshots/ to
refresh the README's pictures). Never in the checkout by default: a tracked file changed by a test run would mark
every later result's code version dirty."""

import os
import re
import tempfile
from pathlib import Path

import pytest
from harness import IDLE, launch_chromium, running_app
from playwright.sync_api import expect, sync_playwright

SCREENSHOTS = Path(os.environ.get("EXPLORER_SCREENSHOTS") or tempfile.mkdtemp(prefix="explorer-screenshots-"))


@pytest.fixture(scope="module")
def app_url():
    with running_app() as (url, _):
        yield url


@pytest.fixture(scope="module")
def page(app_url):
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        page.wait_for_selector(IDLE, timeout=90_000)
        yield page
        browser.close()


def test_the_eps_slider_answers_in_the_browser_and_the_link_follows_it(page):
    verdicts = page.locator(".eps-viewer .verdict")  # Playwright's locators reach into the component's shadow root
    expect(verdicts.filter(has_text="now 3")).to_have_count(1, timeout=60_000)  # triplet, FGSM (the default), eps 0.30
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "attack.png", full_page=True)
    slider = page.locator(".eps-viewer input[type='range']")
    slider.focus()
    slider.press("Home")  # eps 0: nothing can flip
    expect(verdicts.filter(has_text="still 7 at eps = 0.00")).to_have_count(2, timeout=1_000)  # no server between
    expect(page.locator(".eps-viewer .true-class .marker")).to_have_attribute("x1", "50")  # the curve's eps 0
    expect(page).to_have_url(re.compile(r"eps=0\.00"), timeout=10_000)  # the server heard the release
    page.wait_for_selector(IDLE)
    slider.press("End")
    expect(verdicts.filter(has_text="at eps = 0.50")).to_have_count(2, timeout=1_000)
    expect(page).to_have_url(re.compile(r"eps=0\.50"), timeout=10_000)
    page.wait_for_selector(IDLE)


def test_a_shared_link_opens_its_view_and_a_bad_one_the_nearest_valid_view(page, app_url):
    fresh = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})  # another student's laptop
    try:
        fresh.goto(f"{app_url}/?models=triplet,softmax&digit=2&attack=pgd&preset=paper&eps=0.2")
        verdicts = fresh.locator(".eps-viewer .verdict")
        expect(verdicts.filter(has_text="at eps = 0.20")).to_have_count(2, timeout=90_000)
        expect(fresh.locator(".eps-viewer h3")).to_have_text(["triplet", "softmax"])
        expect(fresh.get_by_text("test digit #2, true class 1. PGD: 40 steps")).to_be_visible()
        # a teacher's advanced settings travel with the link and open in the widgets
        fresh.goto(f"{app_url}/?models=triplet,softmax&digit=2&attack=pgd&preset=paper&steps=7&step_size=eps/steps"
                   "&restarts=2&eps=0.2")
        expect(fresh.get_by_text("test digit #2, true class 1. PGD: 7 steps of eps / steps, random start, loss ce, "
                                 "2 restarts.")).to_be_visible(timeout=90_000)
        expect(verdicts.filter(has_text="at eps = 0.20")).to_have_count(2, timeout=90_000)
        fresh.get_by_text("Advanced attack parameters").click()
        expect(fresh.get_by_role("spinbutton", name="Steps")).to_have_value("7")
        expect(fresh.get_by_role("spinbutton", name="Step size")).to_have_value("")
        expect(fresh.get_by_role("spinbutton", name="Restarts")).to_have_value("2")
        expect(fresh).to_have_url(re.compile(r"steps=7&step_size=eps(%2F|/)steps&restarts=2"))
        fresh.goto(f"{app_url}/?models=nope&digit=seven&attack=cw&eps=9")
        notices = fresh.get_by_test_id("stAlert")
        expect(notices.filter(has_text="'nope'")).to_have_count(1, timeout=90_000)
        expect(verdicts.filter(has_text="at eps = 0.50")).to_have_count(2, timeout=90_000)
        expect(fresh.get_by_test_id("stException")).to_have_count(0)
    finally:
        fresh.close()


def test_the_budget_page_draws_its_charts(page):
    page.get_by_test_id("stSidebarNav").get_by_text("Epsilon budget").click()
    charts = page.locator(".js-plotly-plot")
    expect(charts).to_have_count(2, timeout=60_000)
    page.wait_for_selector(IDLE)
    page.set_viewport_size({"width": 1400, "height": 1500})  # the page scrolls inside its own container
    page.screenshot(path=SCREENSHOTS / "budget.png")


def test_the_latent_page_draws_figure2_and_plays_it(page):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.get_by_test_id("stSidebarNav").get_by_text("Latent space").click()
    chart = page.locator(".js-plotly-plot")
    expect(chart).to_have_count(1, timeout=90_000)
    page.wait_for_selector(IDLE)
    slider_value = chart.locator(".slider-group > text.slider-label").first  # "eps = …"
    expect(slider_value).to_have_text("eps = 0.00")
    chart.get_by_text("Play").click()
    expect(slider_value).not_to_have_text("eps = 0.00", timeout=10_000)  # the digits are on the move
    page.wait_for_timeout(8_000)  # let them arrive: 26 frames
    page.screenshot(path=SCREENSHOTS / "latent.png")


def test_a_page_opened_by_its_address_keeps_the_navigation_and_the_model_pair(page, app_url):
    page.goto(app_url.rstrip("/") + "/gallery")
    page.wait_for_selector(IDLE, timeout=60_000)
    expect(page.get_by_role("heading", name="Gallery (Figure 1)")).to_be_visible()
    expect(page.get_by_test_id("stSidebarNav").get_by_text("Attack a digit")).to_be_visible()
    expect(page.get_by_test_id("stMultiSelect")).to_be_visible()  # app.py ran: the sidebar's model pair is there


def test_a_model_uploaded_in_the_sidebar_joins_the_pair_and_a_bad_file_is_refused(page, tmp_path, monkeypatch):
    import shutil

    import torch
    from made_elsewhere import Theirs, doubling_graph, exported_with_defaults, install_exporter, install_onnx_extra

    from explorer import models

    install_onnx_extra()
    install_exporter()
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(models.checkpoint_dir() / f"softmax{suffix}", folder)
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(folder))  # the shipped models of the server this test starts
    torch.manual_seed(0)
    offered = exported_with_defaults(Theirs(), tmp_path / "Their Net.onnx")  # and "Their Net.onnx.data" beside it
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(offered.read_bytes()[:500])  # an interrupted download
    hostile = doubling_graph(tmp_path / "doubling.onnx")
    with running_app() as (url, _):  # its own server: the models it adds go to $EXPLORER_MODELS
        fresh = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            fresh.goto(f"{url}/?models=softmax")
            fresh.wait_for_selector(IDLE, timeout=90_000)
            sidebar = fresh.get_by_test_id("stSidebar")
            sidebar.get_by_text("Add your own model").click()
            for upload, outcome in (([damaged], "not a valid ONNX model"), ([hostile], "cannot exhaust the memory"),
                                    ([offered], "beside it, which is missing: add both files"),
                                    ([offered, offered.with_name("Their Net.onnx.data")], "Added their-net")):
                sidebar.locator("input[type='file']").set_input_files(upload)
                fresh.wait_for_selector(IDLE, timeout=30_000)
                sidebar.get_by_role("button", name="Add", exact=True).click()
                expect(sidebar.get_by_text(outcome)).to_be_visible(timeout=60_000)
                fresh.wait_for_selector(IDLE, timeout=30_000)  # each try empties the uploader for the next
                expect(sidebar.locator("input[type='file']")).to_have_count(1, timeout=30_000)
            expect(fresh.locator(".eps-viewer h3")).to_have_text(["softmax", "their-net"], timeout=90_000)
            expect(fresh.get_by_test_id("stException")).to_have_count(0)
        finally:
            fresh.close()
    assert sorted(p.name for p in folder.iterdir()) == ["softmax.json", "softmax.safetensors"]  # shipped untouched
    added = models.user_model_dir()
    assert sorted(p.name for p in added.iterdir()) == ["their-net.json", "their-net.safetensors"]
    assert models.read_card(added / "their-net.json")["source"]["file"] == "Their Net.onnx, uploaded in the app"
