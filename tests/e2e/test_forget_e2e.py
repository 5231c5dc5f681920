"""The whole product in headless Chromium on the default config: train (reloading mid-job and
re-attaching to it), pick three samples in the gallery, forget them while the grid moves, verify,
read "exact"; then every page, with no Streamlit exception box anywhere."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EXCEPTION = '[data-testid="stException"]'
TRAIN_S = 600  # the default pipeline takes ~15 s on an idle 2-core CPU; CI machines can be busy
PICKS = (3, 17, 20)  # all on the first gallery page

pytestmark = pytest.mark.e2e


def cells(page, state: str):
    return page.locator(f'.st-key-retrain_grid td[data-state="{state}"]')


def test_train_forget_verify_flow(page, wait_idle, screenshot_whole_app, tmp_path):
    folder = ASSETS if os.environ.get("PURGE_SCREENSHOTS") == "1" else tmp_path
    page.get_by_role("button", name="Train teachers and all three student methods").click()
    expect(cells(page, "done").first).to_be_visible(timeout=TRAIN_S * 1000)  # the grid moves
    assert "job=" in page.url and "run=" in page.url

    page.reload()  # a reload during the running job re-attaches to it through the URL
    # the job's own progress bar (the sidebar and the disabled button's caption name the job too)
    expect(page.get_by_test_id("stProgress").get_by_text("Training digits-")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Trained.")).to_be_visible(timeout=TRAIN_S * 1000)
    wait_idle(page)
    expect(page.locator(EXCEPTION)).to_have_count(0)

    page.get_by_role("link", name="Forget").click()
    wait_idle(page)
    for sample_id in PICKS:
        page.locator(f".st-key-pick_{sample_id} label").click()
        wait_idle(page)
    expect(page.get_by_text("Selected: 3")).to_be_visible()
    expect(page.get_by_text("Blast radius")).to_be_visible()
    screenshot_whole_app(page, folder / "screenshot-forget-preview.png")

    page.get_by_role("button", name="Forget 3 samples").click()
    expect(cells(page, "done").first).to_be_visible(timeout=TRAIN_S * 1000)  # only affected cells retrain
    expect(page.get_by_text("Request 1: results")).to_be_visible(timeout=TRAIN_S * 1000)
    wait_idle(page)
    assert cells(page, "kept").count() > 0 and cells(page, "done").count() > 0
    screenshot_whole_app(page, folder / "screenshot-forget.png")

    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("Exact.")).to_be_visible(timeout=TRAIN_S * 1000)
    wait_idle(page)
    expect(page.locator(EXCEPTION)).to_have_count(0)

    for name in ("Mapping", "Compare", "Trade-offs", "Learn", "Setup"):
        page.get_by_role("link", name=name).click()
        wait_idle(page)
        expect(page.locator(EXCEPTION)).to_have_count(0)
        if name in ("Mapping", "Compare"):
            screenshot_whole_app(page, folder / f"screenshot-{name.lower()}.png")
