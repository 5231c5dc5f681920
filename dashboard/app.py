"""PURGE Explorer dashboard: the router and the run sidebar. Run from the repo root:
`streamlit run dashboard/app.py`."""

import sys
from pathlib import Path

import streamlit as st

# `streamlit run` puts dashboard/ on sys.path, not the repo root that `import dashboard` needs.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboard.shared import components  # noqa: E402 - needs the repo root on sys.path first

# An emoji favicon is drawn in the browser; a page's ":material/..." icon as favicon would be fetched
# from fonts.gstatic.com, a request to outside the machine on every page view.
st.set_page_config(page_title="PURGE Explorer", page_icon="🧹", layout="wide")
navigation = st.navigation([
    st.Page("app_pages/setup.py", title="Setup", icon=":material/tune:", default=True),
    st.Page("app_pages/mapping.py", title="Mapping", icon=":material/account_tree:"),
    st.Page("app_pages/forget.py", title="Forget", icon=":material/delete_sweep:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/bar_chart:"),
    st.Page("app_pages/tradeoffs.py", title="Trade-offs", icon=":material/ssid_chart:"),
    st.Page("app_pages/learn.py", title="Learn", icon=":material/school:"),
])
components.run_sidebar()
navigation.run()
