"""Shared links and the lesson in headless Chromium: a link with a layout or a lesson step opens on
it; the whole lesson can be walked, guessing, taking each step on a real run, and verifying."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from dashboard.learn import lesson
from purge_engine.datasets.readers import load_dataset
from purge_engine.plan import make_plan

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EXCEPTION = '[data-testid="stException"]'
JOB_S = 300
SAMPLES = lesson.lesson_samples(make_plan(lesson.LESSON_CONFIG, load_dataset("digits")))
ACTION_DONE = {2: "Teacher ensemble: test accuracy", 5: "PURGE student: test accuracy",
               6: f"Forget #{SAMPLES['teacher_side']}: succeeded", 7: f"Forget #{SAMPLES['student_side']}: succeeded",
               8: "Exact."}

pytestmark = pytest.mark.e2e


def test_a_shared_setup_link_lands_on_its_layout(browser, app_url, wait_idle):
    context = browser.new_context(viewport={"width": 1400, "height": 2200})
    page = context.new_page()
    page.goto(f"{app_url}/?n_teachers=6&n_students=3&seed=4&student_data=disjoint&student_fraction=0.5")
    wait_idle(page)
    expect(page.locator(".st-key-n_teachers input")).to_have_value("6")
    expect(page.locator(".st-key-n_students input")).to_have_value("3")
    expect(page.locator('[data-testid="stTable"]')).to_contain_text("Teachers 5–6")
    assert "n_teachers=6" in page.url and "seed=4" in page.url
    expect(page.locator(EXCEPTION)).to_have_count(0)
    context.close()


def test_a_shared_lesson_link_lands_on_its_step(page, app_url, wait_idle):
    page.goto(f"{app_url}/learn?step=4")
    wait_idle(page)
    expect(page.get_by_role("heading", name="4. The constituent mapping")).to_be_visible()
    expect(page.locator(EXCEPTION)).to_have_count(0)


def test_walk_the_whole_lesson(page, app_url, wait_idle, screenshot_whole_app, tmp_path):
    folder = ASSETS if os.environ.get("PURGE_SCREENSHOTS") == "1" else tmp_path
    page.goto(f"{app_url}/learn?step=1")
    wait_idle(page)
    for step, title in enumerate(lesson.STEPS, start=1):
        expect(page.get_by_role("heading", name=f"{step}. {title}")).to_be_visible()
        assert f"step={step}" in page.url
        page.locator(f'.st-key-learn_answer_{step} [role="radiogroup"] label').first.click()
        wait_idle(page)
        page.get_by_role("button", name="Check my answer").click()
        expect(page.get_by_text("Right.").or_(page.get_by_text("Not quite"))).to_be_visible()
        wait_idle(page)
        if step in ACTION_DONE:
            page.locator(".st-key-learn_action button").click()
            expect(page.get_by_text(ACTION_DONE[step]).first).to_be_visible(timeout=JOB_S * 1000)
            wait_idle(page)
            if step == 6:
                screenshot_whole_app(page, folder / "screenshot-learn.png")
        expect(page.locator(EXCEPTION)).to_have_count(0)
        if step < len(lesson.STEPS):
            page.get_by_role("button", name="Next →").click()
            wait_idle(page)
