"""PURGE Explorer engine: SISA teachers, PURGE students, exact forget requests.

A plain library: importing it does no work and never imports Streamlit.
"""

__version__ = "0.1.0"
