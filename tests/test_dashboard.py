"""The dashboard in Debian's headless Chromium, on the real pipeline: real data, no errors, live."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from localkafka import LocalKafka, free_port
from pipeline import Pipeline, streaming
from playwright.sync_api import Page, sync_playwright

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "dashboard.png"
LINE_HZ = 1.5e5
FILES = 10

# Every non-white, non-uniform canvas counts as drawn: a blank uPlot canvas is one colour.
CANVASES_DRAWN = """() => [...document.querySelectorAll('canvas')].map(c => {
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const colours = new Set();
    for (let i = 0; i < data.length && colours.size < 8; i += 4 * 97) {
        colours.add(data[i] * 65536 + data[i + 1] * 256 + data[i + 2]);
    }
    return {id: c.closest('[id]')?.id, width: c.width, colours: colours.size};
})"""


@pytest.fixture(scope="module")
def page(
    kafka: LocalKafka, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Page, list[str], Pipeline]]:
    with streaming(kafka, tmp_path_factory.mktemp("dashboard")) as pipe:
        port = free_port()
        pipe.start_api(port=port)
        pipe.start("producer", "quax-producer", "run", "--source", "synthetic", "--run-id", "dash",
                   "--samples-per-file", str(3072 * 400), "--files", str(FILES),
                   "--line-strength", "3", "--line-frequency-hz", str(LINE_HZ),
                   "--seconds-per-pair", "1.5")  # fmt: skip
        pipe.collect({"dash": 2}, timeout=120)
        problems: list[str] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"],
            )  # fmt: skip
            tab = browser.new_page(viewport={"width": 1600, "height": 1300})
            tab.on(
                "console",
                lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
            )
            tab.on("pageerror", lambda error: problems.append(str(error)))
            tab.goto(f"http://127.0.0.1:{port}/#run=dash")
            yield tab, problems, pipe
            browser.close()


def test_the_dashboard_draws_real_data_without_errors(page):
    tab, problems, _ = page
    tab.wait_for_selector('body[data-ready="true"]', timeout=60_000)
    tab.wait_for_timeout(1000)
    canvases = tab.evaluate(CANVASES_DRAWN)
    drawn = {c["id"] for c in canvases if c["colours"] > 2}
    assert {"latest-file", "run-spectrum", "excess", "waterfall"} <= drawn, canvases
    assert problems == []


def test_the_injected_line_shows_up_as_a_candidate(page):
    tab, problems, _ = page
    row = tab.wait_for_selector("#candidates tbody tr", timeout=90_000)
    text = row.inner_text()
    offsets = [float(cell) for cell in text.split() if _is_number(cell)]
    assert any(abs(value - LINE_HZ / 1e3) < 2.0 for value in offsets), text
    assert problems == []


def test_the_dashboard_updates_when_the_next_file_arrives(page):
    tab, problems, _ = page
    before = int(tab.get_attribute("body", "data-files-seen") or 0)
    deadline = time.monotonic() + 30
    while int(tab.get_attribute("body", "data-files-seen") or 0) <= before:
        assert time.monotonic() < deadline, "no file update reached the page"
        tab.wait_for_timeout(250)
    tab.wait_for_timeout(1500)
    tab.screenshot(path=str(SCREENSHOT), full_page=True)
    assert problems == []


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
