"""The Compare page through AppTest: ledger, charts and certificate of the trained "tiny" run."""

import json

from purge_engine.experiment import Experiment
from purge_engine.rundir.ledger import Ledger
from tests.dashboard.conftest import RUN_NAME, app_on


def ledger_table(at):
    return next(df.value for df in at.dataframe if "Status" in df.value.columns)  # not the evidence table


def test_page_shows_one_ledger_row_per_request(runs_dir):
    at = app_on("compare")
    assert not at.exception
    table = ledger_table(at)
    assert table["Request"].tolist() == [1, 2]
    assert table["Status"].tolist() == ["done", "done"]
    assert table["Side"].tolist() == ["teacher", "student"]
    assert at.metric[0].value == "2"  # requests served
    assert any("Hash chain intact" in s.value for s in at.success)
    assert {b.key for b in at.download_button} == {"ledger_csv", "certificate_download"}


def test_cost_unit_toggle_and_certificate_choice(runs_dir):
    at = app_on("compare")
    assert at.radio(key="compare_unit").value == "sample_steps"
    at.radio(key="compare_unit").set_value("seconds").run()
    assert not at.exception
    assert any("estimated from this run's measured seconds per sample-step" in c.value for c in at.caption)
    picker = at.selectbox(key="certificate_request")
    assert picker.options == ["Request 1", "Request 2"] and picker.value == 2
    picker.set_value(1).run()
    assert not at.exception
    certificate = json.loads(at.json[0].proto.body)
    assert certificate["request_id"] == 1 and certificate["chain_valid"] is True
    assert certificate["sample_ids"] == Ledger(runs_dir / RUN_NAME / "ledger.sqlite").record(1)["sample_ids"]


def test_without_a_run_the_page_says_how_to_get_one(empty_runs_dir):
    at = app_on("compare", run=None)
    assert not at.exception
    assert any("No run selected" in i.value for i in at.info)
    assert not at.dataframe


def test_a_run_with_no_requests_points_to_the_forget_page(empty_runs_dir, tiny_config):
    Experiment.create(tiny_config, empty_runs_dir / "fresh")  # a plan, nothing trained or forgotten
    at = app_on("compare", run="fresh")
    assert not at.exception
    assert any("Forget" in i.value and "no forget request" in i.value for i in at.info)
    assert not at.dataframe
