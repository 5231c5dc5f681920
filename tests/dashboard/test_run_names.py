"""Issue 17 on the dashboard: the Setup page's run name is a name (a path, '..' or an over-long name
disables Train with the sentence that says what a name may be, and nothing is written anywhere), and a
request another process is serving shows as in progress."""

import pytest

from tests.dashboard.conftest import app_on


@pytest.mark.parametrize("name", ["..", "../outside", "/tmp/absolute", "x" * 300])
def test_a_run_name_that_is_a_path_disables_train_and_writes_nothing(empty_runs_dir, tmp_path, name):
    at = app_on("", run=None)
    before = sorted(tmp_path.rglob("*"))
    at.text_input(key="run_name").input(name).run()
    assert not at.exception
    assert at.button(key="train").disabled
    assert any("run_name" in e.value and "1 to 100 characters of letters, digits" in e.value for e in at.error)
    assert at.query_params.get("run") is None
    assert sorted(tmp_path.rglob("*")) == before and not empty_runs_dir.exists()


@pytest.mark.parametrize("name", ["datasets", "sweeps", "lessons", "Lessons"])
def test_a_reserved_folder_name_disables_train_and_writes_nothing(empty_runs_dir, tmp_path, name):
    at = app_on("", run=None)
    before = sorted(tmp_path.rglob("*"))
    at.text_input(key="run_name").input(name).run()
    assert at.button(key="train").disabled
    assert any("run_name" in e.value and "keeps for other things" in e.value for e in at.error)
    assert sorted(tmp_path.rglob("*")) == before


def test_a_request_another_process_serves_shows_as_in_progress(runs_dir):
    """Not "not trained" or "stopped mid-request": the run's lock is held elsewhere, so it is running."""
    import threading

    from purge_engine.rundir.ledger import Ledger
    from purge_engine.rundir.lock import writer_lock
    from purge_engine.rundir.store import RunStore
    from tests.dashboard.conftest import RUN_NAME

    store = RunStore(runs_dir / RUN_NAME)
    held, release = threading.Event(), threading.Event()

    def serve_elsewhere() -> None:
        with writer_lock(store, holder="a forget request"):
            Ledger(store.ledger_path).append(3, "started", {"sample_ids": [5], "methods": ["purge"]})
            held.set()
            release.wait(timeout=60)

    thread = threading.Thread(target=serve_elsewhere)
    thread.start()
    try:
        assert held.wait(timeout=60)
        at = app_on("forget")
        assert not at.exception
        assert any("Request 3 is in progress in another process" in i.value for i in at.info)
        assert not any("not trained" in i.value for i in at.info) and not at.warning
    finally:
        release.set()
        thread.join(timeout=60)
