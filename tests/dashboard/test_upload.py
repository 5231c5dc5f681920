"""Setup's upload of the user's own data (dashboard/setup/upload_parts.py) through AppTest: a good file is
imported and selected; a bad one shows the engine's sentence and stores nothing."""

import io

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.setup.upload_parts import UPLOAD_FILE, UPLOAD_FOLDER
from dashboard.shared.state import RUNS_DIR_ENV
from purge_engine.datasets import userdata
from purge_engine.datasets.sources import DATASETS
from tests.dashboard import APP


def npz_bytes(x, y) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y)
    return buffer.getvalue()


@pytest.fixture
def at(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNS_DIR_ENV, str(tmp_path / "runs"))
    monkeypatch.delenv(userdata.DATASETS_DIR_ENV, raising=False)
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    return app


def test_an_uploaded_npz_is_imported_selected_and_planned(at, tmp_path):
    y = np.arange(120) % 3
    x = (np.random.default_rng(0).random((120, 1, 8, 8)) * 90 + y[:, None, None, None] * 50).astype(np.uint8)
    at.file_uploader(key=UPLOAD_FILE).set_value(("faces.npz", npz_bytes(x, y), "application/octet-stream")).run()
    assert not at.exception and not at.error
    name = at.selectbox(key="dataset").value
    assert name.startswith("user:") and (tmp_path / "runs" / "datasets" / name[len("user:"):]).is_dir()
    assert DATASETS[name].title in at.selectbox(key="dataset").options and "faces.npz" in at.success[0].value
    assert at.button(key="train") and not at.button(key="train").disabled  # its data loads: the run can train


def test_a_bad_upload_shows_what_is_wrong_and_stores_nothing(at, tmp_path):
    bad = npz_bytes(np.zeros((40, 4), np.float32), np.arange(39) % 2)
    at.file_uploader(key=UPLOAD_FILE).set_value(("bad.npz", bad, "application/octet-stream")).run()
    assert not at.exception
    assert any("x holds 40 samples but y 39 labels" in e.value for e in at.error)
    assert at.selectbox(key="dataset").value == "digits" and not (tmp_path / "runs" / "datasets").exists()


def test_the_folder_uploader_takes_a_whole_directory(at):
    assert at.file_uploader(key=UPLOAD_FOLDER).accept_directory


def test_an_uploaded_files_name_is_shown_literally_never_as_a_link():
    from dashboard.setup.upload_parts import plain

    shown = plain("[click me](http://example.invalid) *bold* my_data.npz")
    assert "](" not in shown and "\\[click me\\]" in shown and "\\*bold\\*" in shown and "http\\://" in shown
