"""A classroom at once: the real server, 8 real browser sessions (Playwright + Chromium) attacking different digits
and moving their eps sliders at the same time, on this machine's CPU.

    python benchmarks/load.py [--sessions 8] [--moves 12] [--waves 2]

Session i opens page 1, picks the i-th 7 of the bundled digits, switches to PGD (two models, PGD-40 over the whole
eps grid) and moves its slider back and forth; then the sessions leave and a new wave comes with other digits.
Reported: errors (exceptions on a page, timeouts: must be 0), the median and worst latency of a slider move (key
press to the new verdicts drawn), the server's peak memory (must stay under 3 GB) and its memory after each wave has
left (must stay flat), and whether every verdict a session saw equals that of a single-session run of the same
inputs (the same attack run alone, in this process).
Targets (issue 5): 0 errors, < 3 GB, every verdict equal to its single-session run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from playwright.async_api import async_playwright, expect

from explorer import attacks, data, evaluate, models, sweeps
from explorer.serve import CHROMIUM, CHROMIUM_ARGS, IDLE, memory_bytes, running_app

PAIR = ("softmax", "triplet")  # the app's default pair
KIND = "pgd"
TIMEOUT_MS = 300_000  # eight sessions' first PGD runs queue up on two cores
STEP = 0.02  # the eps slider's step
# "still 7 at eps = 0.32", one per model
VERDICTS = """() => [...(window.epsView ??= [...document.querySelectorAll('*')]
  .find((e) => e.shadowRoot?.querySelector('.eps-viewer'))?.shadowRoot)?.querySelectorAll('.verdict') ?? []]
  .map((v) => v.innerText.trim())"""  # the eps view lives in a component's shadow root


@dataclasses.dataclass
class Session:
    which: int  # the rank of its 7 among the bundled 7s
    moves: list[float] = dataclasses.field(default_factory=list)
    setup: float = 0.0  # seconds from opening the app to its PGD verdicts drawn
    seen: list[tuple[float, list[str]]] = dataclasses.field(default_factory=list)  # (eps, verdicts) after each move
    errors: list[str] = dataclasses.field(default_factory=list)


async def slider_move(page, slider, key: str) -> tuple[float, float, list[str]]:
    """Seconds from a key press to every model's verdict drawn at the new eps; that eps and the verdicts."""
    before = float((await page.evaluate(VERDICTS))[0].rsplit("= ", 1)[1])
    target = f"{before + (STEP if key == 'ArrowRight' else -STEP):.2f}"
    await slider.focus()  # a rerun may have redrawn the slider
    start = time.perf_counter()
    await slider.press(key)
    # Models' columns arrive one after the other: the move is done when all of them show the new eps.
    await page.wait_for_function(f"(target) => ({VERDICTS})().every(text => text.endsWith('= ' + target)) && "
                                 f"({VERDICTS})().length === {len(PAIR)}", arg=target, polling="raf",
                                 timeout=TIMEOUT_MS)
    seconds = time.perf_counter() - start
    await page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
    return seconds, float(target), [text.split(" at eps")[0] for text in await page.evaluate(VERDICTS)]


async def open_session(browser, url: str, session: Session) -> tuple:
    """A new browser session on page 1 with its own digit, PGD chosen and both verdicts drawn."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    try:
        start = time.perf_counter()
        await page.goto(url)
        await page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
        which = page.get_by_label("Which one of the class")
        await which.fill(str(session.which))
        await which.press("Enter")
        await expect(page.get_by_text(f"#{expected_index(session.which)}, true class 7")).to_be_visible(
            timeout=TIMEOUT_MS)
        await page.get_by_text("PGD", exact=True).click()
        await page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
        await expect(page.locator(".eps-viewer .verdict")).to_have_count(len(PAIR), timeout=TIMEOUT_MS)
        await page.evaluate("() => { window.epsView = undefined; }")  # PGD's view replaced FGSM's
        session.setup = time.perf_counter() - start
    except Exception as error:  # a timeout or a lost page counts as an error of this session, the run goes on
        await record(page, session, error)
    return context, page


async def move_slider(page, session: Session, moves: int) -> None:
    """Back and forth between two eps values, reading both verdicts after each move."""
    try:
        slider = page.locator(".eps-viewer input[type='range']")
        for move in range(moves):
            seconds, eps, verdicts = await slider_move(page, slider, "ArrowRight" if move % 2 == 0 else "ArrowLeft")
            session.moves.append(seconds)
            session.seen.append((eps, verdicts))
        if await page.get_by_test_id("stException").count():
            session.errors.append(await page.get_by_test_id("stException").first.inner_text())
    except Exception as error:
        await record(page, session, error)


async def record(page, session: Session, error: Exception) -> None:
    """The error, and a screenshot of the page as it stood, to see what went wrong."""
    picture = Path(tempfile.gettempdir()) / f"load-session-{session.which}.png"
    await page.screenshot(path=picture, full_page=True)
    session.errors.append(f"{type(error).__name__}: {str(error).splitlines()[0]} (page: {picture})")


def cpu_seconds(match: str) -> float:
    """CPU time (user + system) used so far by every process whose command line contains `match`."""
    total = 0
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and match in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except OSError:  # gone meanwhile
            continue
    return total / os.sysconf("SC_CLK_TCK")


def port_of(url: str) -> str:
    return url.rsplit(":", 1)[1]


def expected_index(which: int) -> int:
    _, labels, indices = data.load_sample()
    return int(indices[np.flatnonzero(labels == 7)[which]])


def single_session_verdicts(which: int) -> dict[float, list[str]]:
    """What page 1 shows for this digit alone, at each eps: the same pixels, attack, parameters and grid."""
    images, labels, _ = data.load_sample()
    position = int(np.flatnonzero(labels == 7)[which])
    image = data.to_tensor(images[position : position + 1])[0]
    params = dataclasses.asdict(attacks.params_for(KIND))
    grid = np.array(sweeps.EPS_GRID)
    predictions = [evaluate.eps_response(models.load(name), image, 7, KIND, grid, **params).predictions
                   for name in PAIR]
    return {round(float(eps), 2): [f"still {p[step]}" if p[step] == 7 else f"now {p[step]}" for p in predictions]
            for step, eps in enumerate(grid)}


async def main(sessions: int, moves: int, waves: int) -> None:
    runs: list[Session] = []
    resident = []  # the server's memory after each wave has left
    browser_cpu = 0.0
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        with running_app() as (url, server):
            for wave in range(waves):  # new students, new digits: memory must not grow with them
                batch = [Session(wave * sessions + rank) for rank in range(sessions)]
                runs += batch
                browser_before = cpu_seconds(Path(CHROMIUM).name)
                # All sessions open and attack their digits at once; then, once all are drawn, all move their sliders.
                opened = await asyncio.gather(*(open_session(browser, url, run) for run in batch))
                await asyncio.gather(*(move_slider(page, run, moves)
                                       for (_, page), run in zip(opened, batch, strict=True) if not run.errors))
                # Counted before the pages close: a closed page's renderer process takes its CPU time with it.
                browser_cpu += cpu_seconds(Path(CHROMIUM).name) - browser_before
                for context, _ in opened:
                    await context.close()
                await asyncio.sleep(5)  # the server drops closed sessions
                resident.append(memory_bytes(server.pid, "VmRSS"))
            peak = memory_bytes(server.pid, "VmHWM")
            server_cpu = cpu_seconds(f"run app.py --server.port {port_of(url)}")
        await browser.close()

    latencies = [move for run in runs for move in run.moves]
    errors = [f"session {run.which}: {error}" for run in runs for error in run.errors]
    setups = [run.setup for run in runs if not run.errors]
    print(f"{waves} waves of {sessions} sessions at once, {moves} slider moves each")
    if setups:
        print(f"open page 1, pick a digit, attack it with PGD-40 over the eps grid (2 models), all sessions at once: "
              f"median {statistics.median(setups):.1f} s, worst {max(setups):.1f} s")
    print(f"errors: {len(errors)} (target 0)")
    for error in errors:
        print(f"  {error}")
    if latencies:
        print(f"slider move, all sessions moving at once: median {1000 * statistics.median(latencies):.0f} ms, worst "
              f"{1000 * max(latencies):.0f} ms over {len(latencies)} moves")
    print(f"server peak memory: {peak / 2**30:.2f} GB (target 3 GB); after each wave had left: "
          + ", ".join(f"{value / 2**30:.2f} GB" for value in resident))
    print(f"CPU time: server {server_cpu:.0f} s, the {sessions} browsers {browser_cpu:.0f} s (sharing this machine's "
          f"{os.cpu_count()} cores; in a classroom each browser has its own computer)")
    mismatches = checked = 0
    for run in runs:
        alone = single_session_verdicts(run.which)
        for eps, verdicts in run.seen:
            checked += 1
            if verdicts != alone[round(eps, 2)]:
                mismatches += 1
                print(f"  session {run.which} (test #{expected_index(run.which)}) at eps {eps:.2f}: showed "
                      f"{verdicts}, alone {alone[round(eps, 2)]}")
    print(f"verdicts that differ from a single-session run of the same inputs: {mismatches} of {checked} "
          "(target 0)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--moves", type=int, default=12)
    parser.add_argument("--waves", type=int, default=2, help="groups of sessions, one after the other")
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.moves, args.waves))
