"""The Setup page in headless Chromium: real images, a real rerun, no exception on screen."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

# README screenshots are refreshed with PURGE_SCREENSHOTS=1; otherwise they go to a temp folder.
ASSETS = Path(__file__).resolve().parents[2] / "assets"
GRID_IMAGES = ".st-key-sample_grid img"
EXCEPTION = '[data-testid="stException"]'
IMAGES_LOADED = f"""() => {{
    const imgs = [...document.querySelectorAll('{GRID_IMAGES}')];
    return imgs.length > 0 && imgs.every(img => img.complete && img.naturalWidth > 0);
}}"""

pytestmark = pytest.mark.e2e


def set_number(page, key: str, value: int) -> None:
    """Type into the number input with this widget key and submit it, as a user would."""
    field = page.locator(f".st-key-{key} input")
    field.fill(str(value))
    field.press("Enter")


def test_setup_page_shows_samples_and_screenshot(page, screenshot_whole_app, tmp_path):
    expect(page.locator(GRID_IMAGES)).to_have_count(24)
    page.wait_for_function(IMAGES_LOADED)
    expect(page.locator(EXCEPTION)).to_have_count(0)
    expect(page.locator(".st-key-sample_grid").get_by_text("#0 · ")).to_be_visible()
    folder = ASSETS if os.environ.get("PURGE_SCREENSHOTS") == "1" else tmp_path
    screenshot_whole_app(page, folder / "screenshot-setup.png")
    assert (folder / "screenshot-setup.png").stat().st_size > 10_000


def test_changing_teachers_reruns_the_page(page, wait_idle):
    set_number(page, "n_teachers", 4)
    expect(page.locator('[data-testid="stTable"]')).to_contain_text("Teachers 3–4")
    wait_idle(page)
    expect(page.locator(EXCEPTION)).to_have_count(0)
    expect(page.locator(GRID_IMAGES)).to_have_count(24)


def test_an_invalid_layout_shows_an_error_naming_the_field(page, wait_idle):
    set_number(page, "n_students", 99)
    expect(page.locator('[data-testid="stAlertContentError"]')).to_contain_text("n_students")
    wait_idle(page)
    expect(page.locator(EXCEPTION)).to_have_count(0)
