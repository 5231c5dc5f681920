"""PURGE Explorer dashboard: the router. Run from the repo root: `streamlit run dashboard/app.py`."""

import sys
from pathlib import Path

import streamlit as st

# `streamlit run` puts dashboard/ on sys.path, not the repo root that `import dashboard` needs.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

st.set_page_config(page_title="PURGE Explorer", layout="wide")
st.navigation([st.Page("app_pages/setup.py", title="Setup", icon=":material/tune:", default=True)]).run()
