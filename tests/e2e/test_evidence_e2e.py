"""The evidence of forgetting in headless Chromium: on a trained demo run, order the gallery most
memorised first, tick the first image, forget it, and read the Evidence panel that opens the results:
the sample's p-values before and after, then, once verified, equal to the from-scratch reference's.

Its own server and runs directory: the demo journey (test_forget_e2e) starts from a cold open."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from purge_engine.audit import memorisation
from purge_engine.config import PurgeConfig
from purge_engine.experiment import Experiment

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EXCEPTION = '[data-testid="stException"]'
JOB_S = 600  # a forget request, then its verification, on a busy 2-core machine
VIEWPORT = {"width": 1400, "height": 2200}
MAIN_HEIGHT = "() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory) -> tuple[Path, int]:
    """A runs directory holding "demo" trained on the defaults; and its most memorised sample."""
    root = tmp_path_factory.mktemp("evidence-runs")
    exp = Experiment.create(PurgeConfig(), root / "demo")
    exp.train()
    return root, int(memorisation(exp)["sample_id"][0])


def screenshot_results(page, path: Path) -> None:
    """The results from their header to the end of the Evidence panel: the viewport grown to the whole
    main area first (Streamlit scrolls inside it), then clipped."""
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], page.evaluate(MAIN_HEIGHT))})
    top = page.get_by_role("heading", name="Request 1: results").bounding_box()
    panel = page.locator(".st-key-evidence").bounding_box()
    path.parent.mkdir(parents=True, exist_ok=True)
    x = max(0.0, panel["x"] - 32)  # the main column only: the sidebar beside it is empty down here
    page.screenshot(path=path, full_page=True, clip={"x": x, "y": top["y"] - 16, "width": panel["width"] + 64,
                                                     "height": panel["y"] + panel["height"] - top["y"] + 32})
    page.set_viewport_size(VIEWPORT)


def test_forget_the_most_memorised_sample_and_read_its_evidence(browser, demo_runs, serve_dashboard, wait_idle,
                                                                 tmp_path):
    runs, top = demo_runs
    folder = ASSETS if os.environ.get("PURGE_SCREENSHOTS") == "1" else tmp_path
    with serve_dashboard(tmp_path / "server.log", {"PURGE_RUNS_DIR": str(runs)}) as url:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(f"{url}/forget?run=demo")
        wait_idle(page)
        page.locator(".st-key-gallery_order").get_by_text("Most memorised first").click()
        first = page.locator('.st-key-sample_grid [class*="st-key-pick_"]').first
        # the top of audit.memorisation comes first
        expect(first).to_have_class(re.compile(rf"\bst-key-pick_{top}\b"), timeout=60_000)
        expect(first).to_contain_text("· p ")  # captioned with its p on its teacher
        wait_idle(page)
        first.locator("label").click()
        expect(first.locator("input")).to_be_checked()
        expect(page.get_by_text("Selected: 1")).to_be_visible(timeout=60_000)
        wait_idle(page)

        page.get_by_role("button", name="Forget 1 sample").click()
        expect(page.get_by_text("Request 1: results")).to_be_visible(timeout=JOB_S * 1000)
        wait_idle(page)
        evidence = page.locator(".st-key-evidence")
        expect(evidence).to_contain_text("Evidence of forgetting")
        expect(evidence).to_contain_text(f"Sample #{top}")
        expect(evidence.locator(f".st-key-evidence_sample_{top} img")).to_be_visible()
        expect(evidence).to_contain_text("reference: verify to compute")
        expect(page.locator(EXCEPTION)).to_have_count(0)

        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_text("Exact.")).to_be_visible(timeout=JOB_S * 1000)
        wait_idle(page)
        expect(evidence).to_contain_text("✓")  # after equals the reference
        expect(evidence).to_contain_text("After equals the from-scratch reference on every one")
        expect(evidence.locator('[data-testid="stPlotlyChart"]')).to_have_count(2)  # the strip and exact-vs-approximate
        expect(page.locator(EXCEPTION)).to_have_count(0)
        screenshot_results(page, folder / "screenshot-evidence.png")
        context.close()
