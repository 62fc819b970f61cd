"""A lesson with a class at once: the real server on this machine's CPU, and N sessions doing what a class does when
the instructor sends one link.

    python benchmarks/load.py [--sessions 10 30] [--browsers 10] [--moves 10] [--digits 3]

Each class size runs twice on a fresh server (opened once by the instructor): with sessions that speak Streamlit's own
websocket protocol (benchmarks/protocol.py: what the server must do, as 30 laptops would ask it), and, for sizes up
to --browsers, with real browser sessions (Playwright + Chromium contexts, which on 2 cores compete with the server
for the CPU that a class's laptops would bring). Every session at once:
1. opens the shared link (a 7, PGD paper preset, eps 0.2, softmax vs triplet): seconds to its first verdicts;
2. moves the eps slider `--moves` times: in a browser, key press to the new verdicts drawn (no server involved),
   then the release reaching the server (the link follows); over the protocol, a release every second (THINK_S)
   and the server's run for it;
3. picks `--digits` new 7s (five distinct ones across the class, so sessions share them): seconds to the first
   verdicts and to the whole eps grid;
4. opens the latent page: seconds to Figure 2 drawn (over the protocol: to the end of its run).
Reported: errors (exceptions on a page, timeouts; target 0), p50 and p95 of each step, the server's peak memory, and
whether every session saw the very same results for the same digit, equal to a run of the same attack alone in this
process (the eps view's id is a hash of everything it draws).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import protocol
from harness import CHROMIUM, CHROMIUM_ARGS, IDLE, memory_bytes, running_app
from playwright.async_api import async_playwright, expect

from explorer import attacks, data, models
from explorer.evaluation import evaluate, sweeps
from explorer.web import eps_view

PAIR = ("softmax", "triplet")
KIND, LINK_EPS = "pgd", 0.2
SHARED_DIGITS = 5  # the new digits the class picks among: 7s number 1 to 5 of the bundled sample
THINK_S = 1.0  # between two releases of a student's slider (the moves between them never reach the server)
TIMEOUT_MS = 600_000  # thirty sessions' first attacks queue on two cores
# The eps views drawn with their verdicts, in every component's shadow root: [id, finished (not a first look)].
VIEWS = """() => [...document.querySelectorAll('*')].filter((e) => e.shadowRoot)
  .flatMap((e) => [...e.shadowRoot.querySelectorAll('.eps-viewer')])
  .filter((view) => view.querySelector('.verdict'))
  .map((view) => [view.dataset.id, !view.querySelector('.pending')])"""
# The first verdict, read every animation frame while the slider moves: the view's shadow root is found once.
FIRST_VERDICT = """() => {
  window.epsView ??= [...document.querySelectorAll('*')].find((e) => e.shadowRoot?.querySelector('.eps-viewer'))
    ?.shadowRoot;
  return window.epsView?.querySelector('.verdict')?.innerText ?? null;
}"""


@dataclasses.dataclass
class Session:
    rank: int
    timings: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    seen: dict[int, str] = dataclasses.field(default_factory=dict)  # test index -> id of the finished eps view
    errors: list[str] = dataclasses.field(default_factory=list)

    def time(self, step: str, seconds: float) -> None:
        self.timings.setdefault(step, []).append(seconds)


def sevens() -> list[int]:
    """Test indices of the bundled 7s: the first is the shared link's digit, the next SHARED_DIGITS the new ones."""
    _, labels, indices = data.load_sample()
    return [int(i) for i in indices[np.flatnonzero(labels == 7)[: SHARED_DIGITS + 1]]]


async def new_view(page, before: list, finished: bool) -> str:
    """Wait for an eps view that was not on the page before (a finished one if told); its id."""
    condition = f"([before, finished]) => ({VIEWS})().find(([id, done]) => !before.includes(id) && (done || !finished))"
    # Every 50 ms, not every frame: a search of the whole page in each of 10 pages would load the CPU it measures.
    handle = await page.wait_for_function(condition, arg=[[view_id for view_id, _ in before], finished],
                                          polling=50, timeout=TIMEOUT_MS)
    return (await handle.json_value())[0]


def link_query() -> str:
    return f"models={','.join(PAIR)}&digit={sevens()[0]}&attack={KIND}&preset=paper&eps={LINK_EPS}"


async def lesson(browser, url: str, session: Session, moves: int, digits: int) -> None:
    """The lesson in a browser."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.on("pageerror", lambda error: session.errors.append(f"page error: {error}"))
    indices = sevens()
    try:
        start = time.perf_counter()
        await page.goto(f"{url}/?{link_query()}", timeout=TIMEOUT_MS)
        await new_view(page, [], finished=False)
        session.time("open the shared link: first verdicts", time.perf_counter() - start)
        session.seen[indices[0]] = await new_view(page, [], finished=True)
        await page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)

        slider = page.locator(".eps-viewer input[type='range']").last
        await page.evaluate("() => { window.epsView = undefined; }")  # the finished view replaced the first look
        await slider.focus()
        for move in range(moves):
            before = await page.evaluate(FIRST_VERDICT)
            start = time.perf_counter()
            await slider.press("ArrowRight" if move % 2 == 0 else "ArrowLeft")
            await page.wait_for_function(f"(before) => ({FIRST_VERDICT})() !== before", arg=before, polling="raf")
            session.time("move the eps slider", time.perf_counter() - start)
        released = LINK_EPS + (0.02 if moves % 2 else 0)
        await expect(page).to_have_url(re.compile(f"eps={released:.2f}"), timeout=TIMEOUT_MS)  # the server has it
        await page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)

        which = page.get_by_label("Which one of the class")
        for pick in range(digits):
            rank = 1 + (session.rank + pick) % SHARED_DIGITS
            before = await page.evaluate(VIEWS)
            start = time.perf_counter()
            await which.fill(str(rank))
            await which.press("Enter")
            await new_view(page, before, finished=False)
            session.time("pick a new digit: first verdicts", time.perf_counter() - start)
            session.seen[indices[rank]] = await new_view(page, before, finished=True)
            session.time("pick a new digit: whole eps grid", time.perf_counter() - start)
            await page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)

        start = time.perf_counter()
        await page.get_by_test_id("stSidebarNav").get_by_text("Latent space").click()
        await expect(page.locator(".js-plotly-plot")).to_have_count(1, timeout=TIMEOUT_MS)
        await page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
        session.time("open the latent page", time.perf_counter() - start)
        if await page.get_by_test_id("stException").count():
            session.errors.append(await page.get_by_test_id("stException").first.inner_text())
    except Exception as error:  # a timeout or a lost page counts as an error of this session, the class goes on
        picture = Path(tempfile.gettempdir()) / f"load-session-{session.rank}.png"
        await page.screenshot(path=picture, full_page=True)
        session.errors.append(f"{type(error).__name__}: {str(error).splitlines()[0]} (page: {picture})")
    finally:
        await context.close()


async def warm_up(browser, url: str) -> None:
    """The instructor's own visit before the class: the server imports PyTorch and loads the models once."""
    page = await browser.new_page()
    await page.goto(url)
    await page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
    await expect(page.locator(".eps-viewer .verdict")).to_have_count(len(PAIR), timeout=TIMEOUT_MS)
    await page.close()


def eps_views(run: protocol.Run) -> list[tuple[float, dict]]:
    return [(at, json.loads(element.bidi_component.json)) for at, element in run.elements
            if element.WhichOneof("type") == "bidi_component"
            and element.bidi_component.component_name == "explorer.eps_viewer"]


async def protocol_lesson(url: str, session: Session, moves: int, digits: int) -> None:
    """The lesson over Streamlit's websocket protocol: the same runs a browser asks for, no browser."""
    indices = sevens()
    try:
        async with protocol.Session(url) as client:
            run = first_run = await client.run(link_query(), timeout=TIMEOUT_MS / 1000)
            session.errors += run.exceptions()
            views = eps_views(run)
            session.time("open the shared link: first verdicts", views[0][0])
            session.seen[indices[0]] = views[-1][1]["id"]
            view_element = [e for _, e in run.elements if e.WhichOneof("type") == "bidi_component"][-1]
            fragment = run.fragments[view_element.bidi_component.id]
            for move in range(moves):
                eps = LINK_EPS + (0.02 if move % 2 == 0 else 0)
                await asyncio.sleep(THINK_S)
                client.set_component_state(view_element, {"eps": round(eps, 2)})
                # A release reruns the page's fragment that holds the view, as the browser's does.
                run = await client.run(link_query(), fragment=fragment, timeout=TIMEOUT_MS / 1000)
                session.errors += run.exceptions()
                session.time("release the eps slider: the server's run", run.seconds)
            which = next(e for _, e in first_run.elements if e.WhichOneof("type") == "number_input"
                         and e.number_input.label == "Which one of the class")
            for pick in range(digits):
                rank = 1 + (session.rank + pick) % SHARED_DIGITS
                client.set_number(which, rank)
                run = await client.run(link_query(), timeout=TIMEOUT_MS / 1000)
                session.errors += run.exceptions()
                views = eps_views(run)
                session.time("pick a new digit: first verdicts", views[0][0])
                session.time("pick a new digit: whole eps grid", views[-1][0])
                session.seen[indices[rank]] = views[-1][1]["id"]
            run = await client.run(link_query(), page="latent", timeout=TIMEOUT_MS / 1000)
            session.errors += run.exceptions()
            if run.first("plotly_chart") is None:
                session.errors.append("the latent page drew no chart")
            session.time("open the latent page", run.seconds)
    except Exception as error:  # a timeout or a closed socket counts as an error of this session
        session.errors.append(f"{type(error).__name__}: {error}")


def alone(index: int) -> str:
    """The eps view's id for this digit attacked alone in this process, as page 1 attacks it."""
    images, labels, indices = data.load_sample()
    position = int(np.flatnonzero(indices == index)[0])
    image = data.to_tensor(images[position : position + 1])[0]
    results = {name: evaluate.eps_response(models.load(name), image, int(labels[position]), attacks.Attack.of(KIND),
                                           np.array(sweeps.EPS_GRID)) for name in PAIR}
    return eps_view.payload(results, int(labels[position]), KIND, LINK_EPS)["id"]


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share)) if values else float("nan")


async def a_class(size: int, moves: int, digits: int, browsers: bool) -> list[str]:
    """One lesson for `size` sessions at once on a fresh server; the report's lines."""
    sessions = [Session(rank) for rank in range(size)]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        with running_app(timeout=120) as (url, server):
            await warm_up(browser, url)
            if not browsers:
                await browser.close()
            started = time.perf_counter()
            await asyncio.gather(*(lesson(browser, url, session, moves, digits) if browsers
                                   else protocol_lesson(url, session, moves, digits) for session in sessions))
            elapsed = time.perf_counter() - started
            peak = memory_bytes(server.pid, "VmHWM")
        if browsers:
            await browser.close()

    how = "browser sessions" if browsers else "sessions over the websocket protocol"
    lines = [f"{size} {how} at once ({elapsed:.0f} s in all):"]
    errors = [f"session {s.rank}: {error}" for s in sessions for error in s.errors]
    lines.append(f"  errors: {len(errors)} (target 0)")
    lines += [f"    {error}" for error in errors]
    for step in dict.fromkeys(step for s in sessions for step in s.timings):
        values = [value for s in sessions for value in s.timings.get(step, [])]
        unit, scale = ("ms", 1000) if "eps slider" in step else ("s", 1)
        lines.append(f"  {step}: p50 {scale * percentile(values, 50):.{0 if unit == 'ms' else 2}f} {unit}, "
                     f"p95 {scale * percentile(values, 95):.{0 if unit == 'ms' else 2}f} {unit} "
                     f"({len(values)} samples)")
    lines.append(f"  server peak memory: {peak / 2**30:.2f} GB")
    seen: dict[int, set[str]] = {}
    for session in sessions:
        for index, view_id in session.seen.items():
            seen.setdefault(index, set()).add(view_id)
    differing = [index for index, ids in seen.items() if ids != {alone(index)}]
    lines.append(f"  digits whose results differ between sessions or from a run alone: {len(differing)} of "
                 f"{len(seen)} (target 0){': ' + ', '.join(f'#{i}' for i in differing) if differing else ''}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 30], help="class sizes, one lesson each")
    parser.add_argument("--browsers", type=int, default=10, help="the largest class also run with real browsers")
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--digits", type=int, default=3, help="new digits each session picks")
    args = parser.parse_args()
    for size in args.sessions:
        for browsers in (False, True) if size <= args.browsers else (False,):
            print("\n".join(asyncio.run(a_class(size, args.moves, args.digits, browsers))), flush=True)


if __name__ == "__main__":
    main()
