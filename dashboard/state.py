"""Session-state keys and cached resources shared by the dashboard pages.

Widget keys are the PurgeConfig field names they set (STYLE rule 11), so a page builds its
config as `PurgeConfig(**{key: value})` and tests find each widget by the same name.
"""

from __future__ import annotations

import streamlit as st

from purge_engine.data import DatasetBundle, load_dataset

# Layout widgets on the Setup page: each key is the PurgeConfig field it sets.
DATASET = "dataset"
N_TEACHERS = "n_teachers"
N_STUDENTS = "n_students"
TEACHER_SLICES = "teacher_slices"
STUDENT_SLICES = "student_slices"
STUDENT_FRACTION = "student_fraction"
STUDENT_DATA = "student_data"
EPOCHS = "epochs"
SEED = "seed"

# Other widgets and containers.
GALLERY_PAGE = "gallery_page"
SAMPLE_GRID = "sample_grid"  # container key: the browser sees CSS class st-key-sample_grid


@st.cache_resource(show_spinner="Loading the dataset…")
def load_bundle(name: str, data_root: str) -> DatasetBundle:
    """The dataset, loaded once per process and shared by every session (read-only).

    Raises DatasetUnavailable (not cached, so a later call finds files that arrive meanwhile).
    """
    return load_dataset(name, data_root=data_root, download=False)
