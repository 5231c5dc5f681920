"""The dashboard imports the engine through its public face (`from purge_engine import X`), and that face
is lazy: every name in `purge_engine.__all__` resolves, and resolving a pure one loads no torch."""

import ast
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import purge_engine

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"


def engine_modules_imported(root: Path = DASHBOARD) -> set[str]:
    """Every engine module a .py file under `root` imports, at any depth ("purge_engine" itself is one)."""
    found = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").partition(".")[0] == "purge_engine":
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.partition(".")[0] == "purge_engine"}
    return found


def test_the_dashboard_imports_the_engine_through_its_public_face():
    modules = engine_modules_imported()
    assert "purge_engine" in modules  # the parse sees the imports
    assert len(modules) < 8, sorted(modules)


def test_the_parse_counts_modules_not_names(tmp_path):
    (tmp_path / "page.py").write_text("from purge_engine import PurgeConfig, make_plan\nimport purge_engine.plan\n"
                                      "def f():\n    from purge_engine.eta import calibrate\n")
    assert engine_modules_imported(tmp_path) == {"purge_engine", "purge_engine.plan", "purge_engine.eta"}


@pytest.mark.parametrize("name", purge_engine.__all__)
def test_every_public_name_resolves(name):
    value = getattr(purge_engine, name)
    submodules = {m.name for m in pkgutil.iter_modules(purge_engine.__path__)}
    if isinstance(value, types.ModuleType):  # lent whole, from the module the table names
        assert value.__name__ == f"purge_engine.{purge_engine._MODULES[name]}"
    else:  # a submodule's name lent for a function would be shadowed once the submodule is imported
        assert name not in submodules, name


def test_an_unknown_name_is_an_attribute_error_and_dir_lists_the_face():
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        purge_engine.nothing_here  # noqa: B018
    assert set(purge_engine.__all__) <= set(dir(purge_engine))


def test_importing_the_face_and_a_pure_name_loads_no_torch():
    code = ("import sys, purge_engine; from purge_engine import make_plan, retrain_scope, PurgeConfig, theory; "
            "print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip() \
        == "False"
