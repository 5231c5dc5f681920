"""The engine is a plain library: importing it pulls in no Streamlit, and plan/theory no torch."""

import subprocess
import sys


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def test_importing_the_engine_does_not_import_streamlit():
    modules = _modules_after("import purge_engine, purge_engine.cli, purge_engine.data, purge_engine.models")
    assert "purge_engine.cli" in modules
    assert not any(m == "streamlit" or m.startswith("streamlit.") for m in modules)


def test_plan_and_theory_are_pure():
    modules = _modules_after("import purge_engine.plan, purge_engine.theory, purge_engine.config")
    assert "purge_engine.plan" in modules
    assert "torch" not in modules
