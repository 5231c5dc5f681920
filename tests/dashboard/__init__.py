"""Dashboard tests: page tests through Streamlit's AppTest and the pure builders behind the pages."""

from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
