"""The Setup page through Streamlit's AppTest: widgets found by their vocabulary keys."""

from dataclasses import fields
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.shared.fields import JS_MAX_INT
from purge_engine.config import PurgeConfig, field_help, field_label, field_meta, field_range
from purge_engine.datasets.sources import DATASETS

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
DEFAULTS = PurgeConfig()
LAYOUT_KEYS = ("n_teachers", "n_students", "teacher_slices", "student_slices", "epochs", "seed")


@pytest.fixture
def at():
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    return app


@pytest.fixture(scope="module")
def setup_page():
    """The Setup page as first drawn, shared by tests that only read its widgets."""
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    return app


INT_FIELDS = [f.name for f in fields(PurgeConfig) if f.metadata["kind"] == "int" and f.name in LAYOUT_KEYS]


def test_the_page_draws_a_number_input_for_every_int_field_of_the_layout(setup_page):
    drawn = {w.key for w in setup_page.number_input if w.key in {f.name for f in fields(PurgeConfig)}}
    assert drawn == set(INT_FIELDS) == set(LAYOUT_KEYS)


@pytest.mark.parametrize("name", INT_FIELDS)
def test_an_int_widget_takes_label_help_and_range_from_the_field_metadata(setup_page, name):
    widget, (low, high) = setup_page.number_input(key=name), field_range(name)
    assert (widget.min, widget.max, widget.step) == (low, min(high, JS_MAX_INT), 1)  # a browser holds ints to 2^53
    assert widget.label == field_label(name) and widget.help.startswith(field_help(name))


def test_the_student_share_slider_leaves_out_the_excluded_zero_by_one_step(setup_page):
    slider, meta = setup_page.slider(key="student_fraction"), field_meta("student_fraction")
    assert meta["min_open"] and (slider.min, slider.max) == (meta["min"] + meta["step"], meta["max"])
    assert slider.label == field_label("student_fraction")


def table_with(at, column):
    """The st.dataframe whose frame has `column`."""
    return next(df.value for df in at.dataframe if column in df.value.columns)


def test_defaults_come_from_purge_config(at):
    assert at.selectbox(key="dataset").value == DEFAULTS.dataset
    assert at.selectbox(key="dataset").options == [spec.title for spec in DATASETS.values()]
    for key in LAYOUT_KEYS:
        assert at.number_input(key=key).value == getattr(DEFAULTS, key), key
    assert at.slider(key="student_fraction").value == DEFAULTS.student_fraction
    assert at.radio(key="student_data").value == DEFAULTS.student_data
    assert not at.error


def test_page_shows_the_plan_as_tables(at):
    assert len(table_with(at, "Teacher")) == DEFAULTS.n_teachers
    assert len(at.table[0].value) == DEFAULTS.n_students
    assert len(table_with(at, "Chunk")) == DEFAULTS.n_teachers  # one chunk per mapped teacher
    assert len(table_with(at, "Sample-steps")) == 5
    assert [m.label for m in at.metric][:3] == ["Train pool", "Teacher samples", "Student samples"]


def test_sample_grid_shows_a_page_of_captioned_images(at):
    grid = at.get_by_key("sample_grid").image
    assert len(grid) == 24
    assert grid[0].captions[0].startswith("#0 · ")
    at.number_input(key="gallery_page").set_value(2).run()
    assert not at.exception
    assert at.get_by_key("sample_grid").image[0].captions[0].startswith("#24 · ")


def test_more_students_than_teachers_is_an_error_not_a_traceback(at):
    at.number_input(key="n_students").set_value(DEFAULTS.n_teachers + 1).run()
    assert not at.exception
    assert len(at.error) == 1 and "n_students" in at.error[0].value
    assert not at.dataframe  # the page stops at the error


def test_disjoint_student_data_needs_a_share_below_one(at):
    at.radio(key="student_data").set_value("overlap").run()
    at.slider(key="student_fraction").set_value(1.0).run()
    assert not at.exception and not at.error
    at.radio(key="student_data").set_value("disjoint").run()  # the share is lowered, not refused
    assert not at.exception and not at.error
    assert at.slider(key="student_fraction").value == DEFAULTS.student_fraction
    assert any("its share must be below 1" in c.value for c in at.sidebar.caption)
    at.slider(key="student_fraction").set_value(1.0).run()  # set to 1 by hand: said with the widget's label
    assert "Student data (share of the pool) [student_fraction]: got 1.0" in at.error[0].value
    at.slider(key="student_fraction").set_value(0.25).run()
    assert not at.exception and not at.error
    students = at.table[0].value["Samples"].sum()
    assert students == int(0.25 * DATASETS["digits"].n_train)
    captions = [img.captions[0] for img in at.get_by_key("sample_grid").image]
    assert any(c.endswith("S –") for c in captions)  # most samples now sit with no student
    assert not any(c.endswith("S –") and " T –" in c for c in captions)  # but every one is somewhere


def test_changing_teachers_changes_mapping_and_tables(at):
    at.number_input(key="n_teachers").set_value(4).run()
    at.number_input(key="n_students").set_value(2).run()
    assert not at.exception and not at.error
    assert len(table_with(at, "Teacher")) == 4
    assert at.table[0].value["Taught by"].tolist() == ["Teachers 1–2", "Teachers 3–4"]
    assert len(table_with(at, "Chunk")) == 4


def test_unavailable_dataset_explains_how_to_get_it(at):
    missing = next(name for name, spec in DATASETS.items() if not spec.builtin)
    at.selectbox(key="dataset").set_value(missing).run()
    assert not at.exception and not at.error
    assert "--download" in at.info[0].value
    assert not at.image  # no files, no gallery; the plan is still shown
    assert len(table_with(at, "Teacher")) == DEFAULTS.n_teachers


def test_a_smaller_dataset_clamps_the_gallery_page(at):
    at.selectbox(key="dataset").set_value("mnist-5k").run()
    assert len(at.get_by_key("sample_grid").image) == 24
    at.number_input(key="gallery_page").set_value(100).run()
    at.selectbox(key="dataset").set_value("digits").run()  # 59 pages of 24 (1,404 images)
    assert not at.exception
    assert at.number_input(key="gallery_page").value == 59
    assert len(at.get_by_key("sample_grid").image) == DATASETS["digits"].n_train - 58 * 24 == 12


def test_train_runs_as_a_job_and_the_sidebar_picks_the_new_run(empty_runs_dir):
    import time

    from tests.dashboard.conftest import app_on

    at = app_on("", run=None)
    for key, value in (("n_teachers", 4), ("n_students", 2), ("epochs", 2), ("teacher_slices", 1),
                       ("student_slices", 1)):
        at.number_input(key=key).set_value(value).run()
    assert at.text_input(key="run_name").value == "digits-t4-s2-r1x1-e2-seed0"
    at.button(key="train").click().run()
    assert not at.exception
    assert at.query_params.get("run") == "digits-t4-s2-r1x1-e2-seed0" and at.query_params.get("job")
    assert at.selectbox(key="run_picker").value == "digits-t4-s2-r1x1-e2-seed0"
    deadline = time.monotonic() + 300
    while not any("Trained." in s.value for s in at.success):
        assert time.monotonic() < deadline and not at.exception and not at.error
        time.sleep(0.5)
        at.run()
    assert len([m for m in at.metric if m.label.endswith("test accuracy")]) == 4
    assert (empty_runs_dir / "digits-t4-s2-r1x1-e2-seed0" / "config.json").exists()
    # the same name with another layout is refused with the engine's sentence; nothing is overwritten
    at.number_input(key="epochs").set_value(3).run()
    at.text_input(key="run_name").input("digits-t4-s2-r1x1-e2-seed0").run()
    at.button(key="train").click().run()
    assert not at.exception and "already holds a run with another config" in at.error[0].value
    assert "epochs is 2 there" in at.error[0].value


def test_a_shared_link_sets_the_layout_and_bad_fields_say_why(empty_runs_dir):
    from streamlit.testing.v1 import AppTest

    from tests.dashboard import APP

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update({"n_teachers": "6", "n_students": "3", "epochs": "abc", "dataset": "nope",
                            "student_data": "disjoint", "student_fraction": "0.5"})
    at.run()
    assert not at.exception
    assert at.number_input(key="n_teachers").value == 6 and at.number_input(key="n_students").value == 3
    assert at.radio(key="student_data").value == "disjoint"
    assert at.number_input(key="epochs").value == DEFAULTS.epochs  # the bad field keeps its default
    messages = " ".join(w.value for w in at.warning)
    assert "epochs: got 'abc' in the link, must be an integer" in messages and "dataset: got 'nope'" in messages
    assert at.query_params["n_teachers"] == "6" and at.query_params["epochs"] == str(DEFAULTS.epochs)
    at.number_input(key="seed").set_value(5).run()
    assert at.query_params["seed"] == "5"  # the address bar follows the widgets


def test_presets_fill_the_layout_and_reproduce_shows_the_commands(at):
    at.selectbox(key="preset").select("many slices").run()
    at.button(key="apply_preset").click().run()
    assert not at.exception
    assert at.number_input(key="teacher_slices").value == 4 and at.number_input(key="student_slices").value == 4
    code = " ".join(c.value for c in at.code)
    assert "python -m purge_engine train --run" in code and "--teacher-slices 4" in code
    assert "Experiment.create(PurgeConfig(" in code and "teacher_slices=4" in code


def test_the_executor_chosen_on_setup_trains_the_run_and_the_grid_names_its_workers(empty_runs_dir, fake_executors,
                                                                                   monkeypatch):
    from dashboard.shared import state
    from tests.dashboard.conftest import FAKE_WORKER, app_on, run_until

    at = app_on("", run=None)
    assert at.radio(key="executor").value == "auto" and at.text_input(key="ray_address").disabled
    assert any(c.value.startswith("Jobs run in this process, on each run's own path") for c in at.sidebar.caption)
    for key, value in (("n_teachers", 2), ("n_students", 1), ("epochs", 1), ("teacher_slices", 1),
                       ("student_slices", 1)):
        at.number_input(key=key).set_value(value).run()
    at.radio(key="executor").set_value("ray").run()
    at.text_input(key="ray_address").input("head-node:6379").run()
    assert not at.text_input(key="ray_address").disabled
    box = at.number_input(key="lanes")  # on Ray, W makes each task a lane group; empty: one chain per task
    assert not box.disabled and box.value is None and "one chain per task" in box.proto.placeholder
    assert any("the Ray cluster at `head-node:6379`; it starts with the first job" in c.value
               for c in at.sidebar.caption)
    at.button(key="train").click().run()
    assert not at.exception
    run_until(at, lambda at: any("Trained." in s.value for s in at.success))
    name = "digits-t2-s1-r1x1-e1-seed0"
    assert ("ray", "head-node:6379") in fake_executors.made and fake_executors.trained == [("ray", name)]
    assert set(fake_executors.lanes) == {None}
    assert [n.split("_")[0] for n in fake_executors.connected] == ["purge-executor-connect"]  # outlives the job
    workers = next(df.value for df in at.dataframe if "Worker" in df.value.columns)
    assert set(workers["Worker"]) == {FAKE_WORKER} and "Teacher 1" in set(workers["Constituent"])
    # the sidebar shows the cluster once a job has joined it (describe() is never called before)
    monkeypatch.setattr(state, "ray_connected", lambda: True)
    at.run()
    assert any("2 nodes · 6 CPUs · 1 GPU." in c.value for c in at.sidebar.caption)
    # the choice survives a visit to another page
    at.switch_page("app_pages/mapping.py").run()
    at.switch_page("app_pages/setup.py").run()
    assert at.radio(key="executor").value == "ray" and at.text_input(key="ray_address").value == "head-node:6379"


def test_lanes_chosen_on_setup_reach_the_job_with_their_width(empty_runs_dir, fake_executors):
    from tests.dashboard.conftest import app_on, run_until

    at = app_on("", run=None)
    assert at.number_input(key="lanes").disabled  # the in-process loop has no lanes
    for key, value in (("n_teachers", 2), ("n_students", 1), ("epochs", 1), ("teacher_slices", 1),
                       ("student_slices", 1)):
        at.number_input(key=key).set_value(value).run()
    at.radio(key="executor").set_value("lanes").run()
    box = at.number_input(key="lanes")
    assert not box.disabled and box.value is None and "auto: 4 on a CPU" in box.proto.placeholder  # auto, said so
    at.number_input(key="lanes").set_value(4).run()
    assert any("as lanes of one batched model" in c.value for c in at.sidebar.caption)
    at.button(key="train").click().run()
    run_until(at, lambda at: any("Trained." in s.value for s in at.success))
    assert ("lanes", None) in fake_executors.made and 4 in fake_executors.lanes
    at.switch_page("app_pages/mapping.py").run()
    at.switch_page("app_pages/setup.py").run()
    assert at.radio(key="executor").value == "lanes" and at.number_input(key="lanes").value == 4


def test_automatic_execution_reaches_the_job_and_takes_no_width(empty_runs_dir, fake_executors):
    from tests.dashboard.conftest import app_on, run_until

    at = app_on("", run=None)
    for key, value in (("n_teachers", 2), ("n_students", 1), ("epochs", 1), ("teacher_slices", 1),
                       ("student_slices", 1)):
        at.number_input(key=key).set_value(value).run()
    at.radio(key="executor").set_value("auto").run()
    assert at.number_input(key="lanes").disabled  # the run (or the device) decides W
    assert any("a new run trains as lanes on a GPU" in c.value for c in at.sidebar.caption)
    at.button(key="train").click().run()
    run_until(at, lambda at: any("Trained." in s.value for s in at.success))
    assert fake_executors.made[-1] == ("auto", None) and fake_executors.lanes[-1] is None


def test_a_cold_open_offers_one_next_action_with_its_predicted_seconds(empty_runs_dir, fake_executors):
    from tests.dashboard.conftest import app_on

    at = app_on("", run=None)
    assert not at.exception
    button = at.button(key="train_demo")
    assert button.label.startswith("Train the demo run (about ") and button.label.endswith(" s here)")
    assert any("Start here" in m.value for m in at.markdown)
    button.click().run()
    assert not at.exception
    assert at.query_params.get("run") == "demo" and at.query_params.get("job")
    assert (empty_runs_dir / "demo" / "config.json").is_file()
    from purge_engine.rundir.store import RunStore

    assert RunStore(empty_runs_dir / "demo").read_config() == PurgeConfig()  # the defaults, as the README says
    at.run()
    with pytest.raises(KeyError):  # a run exists now: the page is the ordinary Setup page
        at.get_by_key("start_here")
