"""The Forget page through AppTest: selection by gallery, ids and class; blast radius and predicted
cost before running; a real request run as a job and polled by rerunning; results and verification."""

import re

from streamlit.testing.v1 import AppTest

from purge_engine.rundir.ledger import Ledger
from purge_engine.rundir.store import RunStore
from purge_engine.vocabulary import title
from tests.dashboard import APP
from tests.dashboard.conftest import RUN_NAME, app_on, run_until


def markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def frame_with(at, column):
    return next(df.value for df in at.dataframe if column in df.value.columns)


def grid_states(at, key: str) -> list[str]:
    """The data-state of every cell of the grid in container `key`, in order."""
    return re.findall(r'<td data-state="(\w+)"', "".join(h.proto.body for h in at.get_by_key(key).html))



def test_no_run_selected_says_how_to_get_one(empty_runs_dir):
    at = app_on("forget", run=None)
    assert not at.exception
    assert any("No run selected" in i.value for i in at.info)


def test_latest_request_results_come_from_the_ledger(runs_dir):
    at = app_on("forget")
    assert not at.exception
    assert any(h.value.startswith("Request 2: results") for h in at.header)
    cost = frame_with(at, "Measured sample-steps")
    students = cost[cost["Method"] != "Full retrain"]
    assert (students["Measured sample-steps"] == students["Predicted sample-steps"]).all()
    assert any(i.value.startswith("**Not verified.** Verify trains a from-scratch reference") for i in at.info)
    assert at.button(key="verify").label == "Verify: train a from-scratch reference and compare"
    membership = frame_with(at, "Attack AUC before")
    assert list(membership["Model"])[0] == title("teacher")
    assert membership["Attack AUC after"].str.match(r"^\d\.\d\d \(\d\.\d\d–\d\.\d\d\)$").all()
    assert membership["Forgotten: loss percentile after"].between(0, 100).all()
    assert at.get_by_key("membership_chart")
    assert any("not a proof of forgetting" in c.value for c in at.caption)


def test_ticking_gallery_images_selects_them_and_previews_the_blast_radius(runs_dir):
    at = app_on("forget")
    forgotten = [box for box in at.checkbox if box.key.startswith("pick_") and box.disabled]
    assert forgotten and all(box.label.endswith("forgotten") for box in forgotten)  # the fixture's requests
    a, b = [int(box.key[5:]) for box in at.checkbox if box.key.startswith("pick_") and not box.disabled][:2]
    at.checkbox(key=f"pick_{a}").check().run()
    at.checkbox(key=f"pick_{b}").check().run()
    assert not at.exception
    assert f"Selected: 2** #{a}, #{b}" in markdown(at)
    assert at.checkbox(key=f"pick_{a}").value and at.checkbox(key=f"pick_{b}").value
    predicted = frame_with(at, "Label forward passes")
    assert list(predicted["Method"])[-1] == "Full retrain"
    assert "Teachers: " in markdown(at)
    assert at.get_by_key("blast_radius")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Full retrain"] == "100%" and metrics["PURGE's advantage (students only)"].endswith("×")  # headline
    assert any(c.value.startswith("This request ") for c in at.caption)  # and which side it is, and why
    at.checkbox(key=f"pick_{a}").uncheck().run()
    assert f"Selected: 1** #{b}" in markdown(at)
    at.button(key="clear_selection").click().run()
    assert "Selected: 0" in markdown(at) and at.button(key="forget").disabled


def test_ids_and_classes_add_to_the_selection_and_bad_ids_say_why(runs_dir):
    at = app_on("forget")
    at.text_input(key="by_ids").input("3, 17 42").run()
    at.button(key="add_ids").click().run()
    assert "Selected: 3** #3, #17, #42" in markdown(at)
    at.text_input(key="by_ids").input("3, x").run()
    at.button(key="add_ids").click().run()
    assert not at.exception and "samples: got 'x'" in at.error[0].value
    at.text_input(key="by_ids").input("99999").run()
    at.button(key="add_ids").click().run()
    assert not at.exception and "99999" in at.error[0].value
    at.text_input(key="by_ids").input("0-99999999999").run()  # refused at once, never built
    at.button(key="add_ids").click().run()
    assert not at.exception and "ids must be in [0, " in at.error[0].value
    at.button(key="clear_selection").click().run()
    free = {int(box.key[5:]) for box in at.checkbox if box.key.startswith("pick_") and not box.disabled}
    first = min(i for i in free if {i + 1, i + 2} <= free)
    at.text_input(key="by_ids").input(f"{first}-{first + 2}").run()  # a range, as on the command line
    at.button(key="add_ids").click().run()
    assert at.session_state["selected"] == [first, first + 1, first + 2]
    at.button(key="clear_selection").click().run()
    at.selectbox(key="by_class").select("7").run()
    at.button(key="add_class").click().run()
    assert len(at.session_state["selected"]) > 20
    at.button(key="clear_selection").click().run()
    at.number_input(key="random_k").set_value(4).run()
    at.button(key="add_random").click().run()
    assert len(at.session_state["selected"]) == 4


def test_forget_runs_as_a_job_then_verifies_exact(runs_dir):
    at = app_on("forget")
    at.session_state["selected"] = [3, 17, 42]
    at.run()
    assert not at.button(key="forget").disabled
    at.button(key="forget").click().run()
    assert not at.exception
    assert at.query_params.get("job")
    run_until(at, lambda at: any(h.value.startswith("Request 3: results") for h in at.header))
    cost = frame_with(at, "Measured sample-steps")
    students = cost[cost["Method"] != "Full retrain"]
    assert (students["Measured sample-steps"] == students["Predicted sample-steps"]).all()
    request_grid = grid_states(at, "retrain_grid")
    assert "done" in request_grid and "kept" in request_grid
    assert "PURGE's advantage (students only)" in [m.label for m in at.metric]
    changes = frame_with(at, "Hash before")  # the with/without view
    assert set(changes["Parameters"]) <= {"retrained", "bit-identical"} and "retrained" in set(changes["Parameters"])
    at.button(key="verify").click().run()
    run_until(at, lambda at: any("Exact" in s.value for s in at.success))
    assert not at.exception
    assert frame_with(at, "Hash before")["Equals from-scratch reference"].all()  # the reference beside them
    assert grid_states(at, "retrain_grid") == request_grid  # the request's grid stays, as it was
    assert set(grid_states(at, "verify_grid")) == {"done"}  # the reference's own, in the Verification panel
    (verdict,) = [s.value for s in at.get_by_key("verification").success]
    assert verdict.startswith("**Exact.** ") and "Exact" not in verdict.removeprefix("**Exact.** ")  # said once
    assert re.search(r"in all \d+ constituents", verdict)  # every constituent was compared, not only the retrained


def test_a_full_retrain_has_its_own_panel_and_never_paints_over_the_request(runs_dir):
    at = app_on("forget")
    at.session_state["selected"] = [3]
    at.checkbox(key="full_retrain").check().run()
    at.button(key="forget").click().run()
    run_until(at, lambda at: any(h.value.startswith("Request 3: results") for h in at.header))
    assert not at.exception
    request_grid = grid_states(at, "retrain_grid")
    assert request_grid.count("kept") > request_grid.count("done") > 0  # unaffected constituents stay kept
    panel = at.get_by_key("full_retrain_panel")
    assert [h.value for h in panel.subheader] == ["Full retrain from scratch (for comparison)"]
    assert set(grid_states(at, "full_retrain_grid")) == {"done"}  # every teacher and PURGE student, apart
    bars = [p.text for p in at.get("progress")]
    assert any(t.startswith("Forgetting 1 sample: done in ") for t in bars)
    assert any(t.startswith("Full retrain: succeeded in ") for t in bars)
    assert "not run" not in set(frame_with(at, "Measured sample-steps")["Measured sample-steps"])  # measured too


def test_reproduce_box_replays_every_request_in_order(runs_dir):
    at = app_on("forget")
    code = [c.value for c in at.code]
    bash = next(c for c in code if c.startswith("python -m purge_engine train"))
    lines = bash.splitlines()
    assert len(lines) == 3 and "forget" in lines[1] and lines[2].endswith("--verify")
    assert any("exp.verify()" in c for c in code)


def test_a_second_viewer_finds_the_running_job_and_watches_it_live(runs_dir, fake_executors):
    """Viewers of a run share its job: one that did not start it (no job id in its URL), or whose
    link names an older job, is shown the running one live and gets it into its URL."""
    fake_executors.gate.clear()  # the job waits, so it is still running while the others look
    first = app_on("forget")
    first.session_state["selected"] = [3, 17, 42]
    first.run()
    first.button(key="forget").click().run()
    job_id = first.query_params["job"]
    second = app_on("forget")  # another session: ?run=tiny, no job
    assert not second.exception
    assert second.button(key="forget").disabled and second.button(key="cancel")  # the live poll
    assert any(p.text.startswith("Forgetting 3 samples") for p in second.get("progress"))
    assert second.query_params["job"] == job_id
    on_setup = app_on("")
    assert not on_setup.exception and on_setup.button(key="cancel") and on_setup.get_by_key("retrain_grid")
    fake_executors.gate.set()
    run_until(second, lambda at: any(h.value.startswith("Request 3: results") for h in at.header))
    # a link naming the finished job: the next running job wins
    fake_executors.gate.clear()
    first.session_state["selected"] = [5]
    first.run()
    first.button(key="forget").click().run()
    assert first.query_params["job"] != job_id
    stale = AppTest.from_file(str(APP), default_timeout=90)
    stale.query_params.update(run="tiny", job=job_id)
    stale.switch_page("app_pages/forget.py").run()
    assert not stale.exception and stale.button(key="cancel")
    assert stale.query_params["job"] == first.query_params["job"]
    fake_executors.gate.set()
    run_until(stale, lambda at: any(h.value.startswith("Request 4: results") for h in at.header))


def test_forget_and_verify_run_on_the_executor_chosen_on_setup_and_cancel_reaches_it(runs_dir, fake_executors):
    at = app_on("")
    at.radio(key="executor").set_value("ray").run()
    at.switch_page("app_pages/forget.py").run()
    at.session_state["selected"] = [3]
    at.run()
    fake_executors.gate.clear()
    at.button(key="forget").click().run()
    assert fake_executors.made[-1] == ("ray", None)
    journal = Ledger(RunStore(runs_dir / RUN_NAME).ledger_path)
    run_until(at, lambda at: journal.pending() == [3], idle=False)  # journaled: a cancel leaves it to finish
    at.button(key="cancel").click().run()  # the executor sees should_stop() turn true
    run_until(at, lambda at: any("Cancelled at a step boundary" in w.value for w in at.warning))
    assert fake_executors.trained == []
    fake_executors.gate.set()
    at.button(key="finish_pending").click().run()  # the journaled request, finished on the same executor
    run_until(at, lambda at: any(h.value.startswith("Request 3: results") for h in at.header))
    assert fake_executors.trained == [("ray", "tiny")]
    at.button(key="verify").click().run()
    run_until(at, lambda at: any("Exact" in s.value for s in at.success))
    assert fake_executors.made[-1] == ("ray", None) and len(fake_executors.trained) > 1  # the reference too


def test_a_damaged_run_is_said_to_be_damaged_and_repaired_from_the_page(runs_dir):
    run = runs_dir / RUN_NAME
    sidecar = max((run / "checkpoints" / "teacher-0").glob("*.json"))  # the teacher's last step
    sidecar.unlink()  # a lost sidecar: the run can no longer show itself trained
    at = app_on("forget")
    assert not at.exception
    assert any("missing or damaged" in e.value for e in at.error)
    at.button(key="repair_run").click().run()
    run_until(at, lambda at: any("the run is whole: True" in s.value for s in at.success))
    assert sidecar.is_file()  # rebuilt, and proved equal to its record (the message says so)
    assert any("every rebuilt file equals its record: True" in s.value for s in at.success)
