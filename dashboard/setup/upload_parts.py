"""Setup's upload of the user's own data: a .npz, a .csv or a folder of images in class subfolders,
checked and stored by the same engine call as `python -m purge_engine train --dataset PATH`
(userdata.import_uploads). A refusal shows the engine's sentence and stores nothing; an import selects
the new dataset, which the dataset box then lists beside the built-ins."""

from __future__ import annotations

import re

import streamlit as st

from dashboard.shared import state
from dashboard.shared.fields import choice_kwargs
from purge_engine import DATASETS, userdata

UPLOAD_FILE, UPLOAD_FOLDER = "dataset_upload", "dataset_upload_folder"  # widget keys
UPLOAD_RESULT = "dataset_upload_result"  # ("ok" | "error", sentence) of the last upload


def dataset_kwargs() -> dict:
    """The dataset box's arguments: the built-ins, then every dataset imported into the runs folder."""
    kwargs = choice_kwargs(state.DATASET)
    kwargs["options"] += [record["name"] for record in userdata.imported()]
    return kwargs


def import_upload(key: str) -> None:
    """on_change of an uploader (before the rerun, so the dataset box may still be set)."""
    chosen = st.session_state.get(key)
    files = chosen if isinstance(chosen, list) else [chosen] if chosen is not None else []
    if not files:
        return
    try:
        name = userdata.import_uploads([(f.name, f.getvalue()) for f in files])
    except ValueError as err:  # DatasetRefused: what is wrong and what is allowed
        st.session_state[UPLOAD_RESULT] = ("error", str(err))
        return
    st.session_state[state.DATASET] = name
    st.session_state[UPLOAD_RESULT] = ("ok", f"Imported as `{name}`: {plain(DATASETS[name].title)}. "
                                             f"{DATASETS[name].n_train:,} train samples.")


def upload_controls(bar) -> None:
    """Two uploaders in the sidebar (one file; or a folder) and the last result."""
    with bar.expander("Your own data", icon=":material/upload:"):
        st.file_uploader("A .npz (arrays x and y) or a .csv (columns text and label)", key=UPLOAD_FILE,
                         on_change=import_upload, args=(UPLOAD_FILE,),
                         help="x: (N, C, H, W), (N, H, W) or (N, D), uint8 pixels or floats; y: class indices "
                              "0..K-1. Checked before anything is stored; named by its content hash.")
        st.file_uploader("Or a folder of images, one subfolder per class", key=UPLOAD_FOLDER,
                         accept_multiple_files="directory", on_change=import_upload, args=(UPLOAD_FOLDER,),
                         help=f"PNG or JPEG, all the same size, at most {userdata.MAX_SIDE} pixels a side; "
                              "folder/<class>/<image>.")
        kind, sentence = st.session_state.get(UPLOAD_RESULT, (None, ""))
        if kind == "error":
            st.error(sentence, icon=":material/error:")
        elif kind == "ok":
            st.success(sentence, icon=":material/check_circle:")


MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()<>#+!|~$:-])")


def plain(text: str) -> str:
    """text shown literally in st.* Markdown: an uploaded file's name (part of the title) is data, so
    brackets, parentheses and the like are escaped and never become a link or formatting."""
    return MARKDOWN_SPECIALS.sub(r"\\\1", text)
