"""The demo journey in headless Chromium on the defaults: cold open, train the demo run (reloading
mid-job and re-attaching to it), tick three images, see the advantage headline, forget them (and retrain
everything from scratch, in its own panel) while the grid moves, verify, read "exact" where the window is,
the request's grid unchanged, the with/without view, Compare; then every page, timed, with no exception box."""

import os
import statistics
import time
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EXCEPTION = '[data-testid="stException"]'
OVERFLOW = ("() => { const m = document.querySelector('[data-testid=\"stMain\"]'); "
            "return m.scrollWidth - m.clientWidth; }")  # px the main area runs past its window
TRAIN_S = 600  # the default pipeline takes ~15 s on an idle 2-core CPU; CI machines can be busy
PICKS = (3, 17, 20)  # all on the first gallery page, all teacher-side on the defaults (PURGE 2.00x the baseline)
# The target is 1 s on 2 idle cores (measured: README); CI's machine may be busy, so the test
# allows more and fails only when a page switch has become several times slower than that.
PAGE_SWITCH_S = 3.0
LAPTOP = {"width": 1400, "height": 900}  # a demo giver's window, for what is in view after a click
TALL = {"width": 1400, "height": 2200}  # conftest's VIEWPORT: Streamlit scrolls its own main area
AFTER_SHOT = Path("/tmp/forget-after.png")  # the Forget page after forget + full retrain + verify, to look at

pytestmark = pytest.mark.e2e


def cells(page, state: str, grid: str = "retrain_grid"):
    return page.locator(f'.st-key-{grid} td[data-state="{state}"]')


def grid_states(page, grid: str = "retrain_grid") -> list[str]:
    return page.locator(f".st-key-{grid} td[data-state]").evaluate_all("cells => cells.map(c => c.dataset.state)")


def switch_to(page, name: str, wait_idle) -> float:
    """Click a page in the navigation and wait for it to be idle; the seconds that took."""
    start = time.perf_counter()
    page.get_by_role("link", name=name).click()
    wait_idle(page)
    return time.perf_counter() - start


def test_the_demo_journey_on_the_defaults(page, wait_idle, screenshot_whole_app, tmp_path):
    """Cold open, train the demo run, tick three images, forget, see the advantage headline, verify,
    see "exact", the with/without view, Compare: what a demo giver does in front of an audience."""
    folder = ASSETS if os.environ.get("PURGE_SCREENSHOTS") == "1" else tmp_path
    expect(page.locator(".st-key-start_here")).to_contain_text("Start here")  # a cold open: one next action
    expect(page.locator(".st-key-train_demo button")).to_contain_text(" s here)")  # with its predicted seconds
    wait_idle(page)
    screenshot_whole_app(page, folder / "screenshot-start.png")
    page.locator(".st-key-train_demo button").click()
    expect(cells(page, "done").first).to_be_visible(timeout=TRAIN_S * 1000)  # the grid moves
    assert "job=" in page.url and "run=demo" in page.url

    page.reload()  # a reload during the running job re-attaches to it through the URL
    # the job's own progress bar (the sidebar and the disabled button's caption name the job too)
    expect(page.get_by_test_id("stProgress").get_by_text("Training demo")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Trained.")).to_be_visible(timeout=TRAIN_S * 1000)
    wait_idle(page)
    expect(page.locator(EXCEPTION)).to_have_count(0)

    switch_to(page, "Forget", wait_idle)
    for picked, sample_id in enumerate(PICKS, 1):  # a click on the image itself ticks it (the mouse, as a user's)
        image = page.locator('[data-testid="stColumn"]', has=page.locator(f".st-key-pick_{sample_id}")).last \
            .locator("img")
        image.scroll_into_view_if_needed()
        box = image.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        # the rerun the tick starts may not have begun when the click returns, and it moves the gallery
        # (the selection line appears): wait for its result before measuring the next image
        expect(page.locator(f".st-key-pick_{sample_id} input")).to_be_checked()
        expect(page.get_by_text(f"Selected: {picked}")).to_be_visible(timeout=60_000)
        wait_idle(page)
    expect(page.get_by_text("Selected: 3")).to_be_visible()
    preview = page.locator(".st-key-advantage_preview")
    expect(preview).to_contain_text("PURGE's advantage")
    expect(preview).to_contain_text("This request is teacher-side")
    screenshot_whole_app(page, folder / "screenshot-forget-preview.png")

    page.locator(".st-key-full_retrain label").click()  # and retrain everything from scratch, to compare
    expect(page.locator(".st-key-full_retrain input")).to_be_checked()
    wait_idle(page)
    page.get_by_role("button", name="Forget 3 samples").click()
    expect(cells(page, "done").first).to_be_visible(timeout=TRAIN_S * 1000)  # only affected cells retrain
    expect(page.get_by_text("Request 1: results")).to_be_visible(timeout=TRAIN_S * 1000)
    wait_idle(page)
    request_grid = grid_states(page)
    assert request_grid.count("kept") > 0 and request_grid.count("done") > 0  # the full retrain painted nothing here
    full = page.locator(".st-key-full_retrain_panel")
    expect(full).to_contain_text("Full retrain from scratch (for comparison)")
    assert set(grid_states(page, "full_retrain_grid")) == {"done"}  # its own grid: everything, from scratch
    expect(page.locator(".st-key-advantage_results")).to_contain_text("×")
    expect(page.locator(".st-key-before_after")).to_contain_text("bit-identical to before the request")

    page.set_viewport_size(LAPTOP)  # what a demo giver sees: the verdict lands where the window is
    verify = page.get_by_role("button", name="Verify: train a from-scratch reference and compare")
    verify.scroll_into_view_if_needed()
    verify.click()
    verdict = page.locator(".st-key-verification").get_by_text("Exact.")
    expect(verdict).to_be_visible(timeout=TRAIN_S * 1000)
    wait_idle(page)
    expect(verdict).to_be_in_viewport()
    expect(page.locator(".st-key-verification")).not_to_contain_text("Exact. Exact")  # said once
    assert grid_states(page) == request_grid  # the request's grid, unchanged beside the reference's own
    assert set(grid_states(page, "verify_grid")) == {"done"}
    page.screenshot(path=AFTER_SHOT.with_name("forget-after-window.png"))  # the window, as the viewer sees it
    page.set_viewport_size(TALL)
    wait_idle(page)
    expect(page.locator(".st-key-before_after")).to_contain_text("Each retrained one equals the from-scratch")
    expect(page.locator(EXCEPTION)).to_have_count(0)
    screenshot_whole_app(page, AFTER_SHOT)
    screenshot_whole_app(page, folder / "screenshot-forget.png")
    page.set_viewport_size({"width": 800, "height": 2200})  # a narrow window: nothing runs off the right edge
    wait_idle(page)
    # a resize starts no script run: the page's elements take their new widths in their own time (on a
    # busy machine, seconds); give them that, then measure
    try:
        page.wait_for_function(f"({OVERFLOW})() <= 1", timeout=15_000)
    except PlaywrightTimeout:
        pass  # the assertion below says by how much
    assert page.evaluate(OVERFLOW) <= 1, "the Forget page is wider than an 800 px window"
    page.screenshot(path=folder / "screenshot-forget-800.png")
    page.set_viewport_size({"width": 1400, "height": 2200})

    switch_to(page, "Compare", wait_idle)
    expect(page.get_by_text("PURGE's advantage")).to_be_visible()
    expect(page.locator(EXCEPTION)).to_have_count(0)
    screenshot_whole_app(page, folder / "screenshot-compare.png")

    seconds = []
    for name in ("Mapping", "Trade-offs", "Learn", "Setup", "Forget", "Compare", "Mapping", "Setup"):
        seconds.append(switch_to(page, name, wait_idle))
        expect(page.locator(EXCEPTION)).to_have_count(0)
        if name == "Mapping" and len(seconds) == 1:
            screenshot_whole_app(page, folder / "screenshot-mapping.png")
    median = statistics.median(seconds)
    print(f"page switches: median {median:.2f} s, max {max(seconds):.2f} s over {len(seconds)}")
    assert median <= PAGE_SWITCH_S, seconds
