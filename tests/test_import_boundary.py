"""The engine is a plain library: importing it pulls in no Streamlit, and its planning side no torch."""

import ast
import subprocess
import sys
from pathlib import Path


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def test_importing_the_engine_does_not_import_streamlit():
    modules = _modules_after("import purge_engine, purge_engine.cli, purge_engine.datasets.readers, "
                             "purge_engine.models")
    assert "purge_engine.cli" in modules
    assert not any(m == "streamlit" or m.startswith("streamlit.") for m in modules)


def test_plan_and_theory_are_pure():
    modules = _modules_after("import purge_engine.plan, purge_engine.theory, purge_engine.config")
    assert "purge_engine.plan" in modules
    assert "torch" not in modules


# -- what needs no torch (issue 12): the planning side of the CLI, the store, a sweep's plan, the job registry --
def _torch_after(statement: str) -> bool:
    return "torch" in _modules_after(statement)


def _cli_loads_torch(*argv: str) -> bool:
    """Runs `python -m purge_engine ARGV` in a fresh interpreter; True when torch was imported."""
    code = ("import runpy, sys\n"
            f"sys.argv = ['purge_engine', *{list(argv)!r}]\n"
            "try:\n    runpy.run_module('purge_engine', run_name='__main__')\n"
            "except SystemExit as stop:\n    assert not stop.code, stop.code\n"
            "print('torch' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return done.stderr.strip().splitlines()[-1] == "True"


def test_cli_planning_commands_do_not_load_torch():
    assert not _cli_loads_torch("theory")
    assert not _cli_loads_torch("theory", "--teachers", "8", "--requests", "3", "--json")
    assert not _cli_loads_torch("plan", "--json")
    assert not _cli_loads_torch("plan", "--samples", "3,10-14")
    assert not _cli_loads_torch("datasets", "--json")


def test_cli_ledger_and_certificate_do_not_load_torch(tmp_path):
    from purge_engine.config import PurgeConfig
    from purge_engine.rundir.ledger import Ledger
    from purge_engine.rundir.store import RunStore

    store = RunStore(tmp_path / "run")
    store.write_config(PurgeConfig())
    Ledger(store.ledger_path).append(1, "started", {"sample_ids": [3], "methods": ["purge"], "predicted": {}})
    assert not _cli_loads_torch("ledger", "--run", str(store.root))
    assert not _cli_loads_torch("certificate", "--run", str(store.root), "--request", "1")


def test_store_sweep_planning_and_the_job_registry_do_not_import_torch():
    assert not _torch_after("import purge_engine.cli")
    assert not _torch_after("import purge_engine.rundir.store, purge_engine.rundir.lock, purge_engine.rundir.ledger, "
                            "purge_engine.rundir.names, purge_engine.rundir.sidecar, purge_engine.rundir.leftovers, "
                            "purge_engine.rundir.files, purge_engine.constituents")
    assert not _torch_after("import purge_engine.reproduce, purge_engine.requests, purge_engine.vocabulary")
    assert not _torch_after("from purge_engine.sweep import SweepGrid, plan_sweep, predicted_sample_steps; "
                            "grid = SweepGrid(n_teachers=(4,), n_students=(1, 2), student_slices=(1,), requests=1); "
                            "assert len(plan_sweep(grid)) == 2 and predicted_sample_steps(grid) > 0")
    assert not _torch_after("import dashboard.shared.jobs")


# -- no import circle (issue 25): every import the engine's modules make, at any depth in a function --
def _dotted(relative) -> str:
    """A module's name inside the engine: "check", "rundir.store"; a subpackage's __init__ is "rundir"."""
    parts = relative.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _imported(node, module: str, is_package: bool, names: set[str]) -> set[str]:
    """The engine modules one import statement loads: the named ones and the packages above them."""
    if isinstance(node, ast.Import):
        found = {a.name.split(".", 1)[1] for a in node.names if a.name.startswith("purge_engine.")}
    elif node.level:  # relative: from the module's own package up
        package = ([] if module == "__init__" else module.split(".")) if is_package else module.split(".")[:-1]
        base = ".".join(package[:len(package) - node.level + 1] + (node.module.split(".") if node.module else []))
        found = {base, *(f"{base}.{a.name}" if base else a.name for a in node.names)}
    elif (node.module or "").startswith("purge_engine"):
        base = node.module.partition(".")[2]
        found = {base, *(f"{base}.{a.name}" if base else a.name for a in node.names)}
    else:
        return set()
    above = {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 1)}
    return (found | above) & names


def _engine_imports() -> dict[str, set[str]]:
    """module -> the engine modules it imports (top level or inside a function), parsed from the source;
    subpackages' modules by their dotted name ("rundir.store")."""
    package = Path(__file__).resolve().parents[1] / "purge_engine"
    paths = {_dotted(path.relative_to(package)): path for path in package.rglob("*.py")}
    graph = {}
    for module, path in paths.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                found |= _imported(node, module, path.name == "__init__.py", set(paths))
        graph[module] = found - {module}
    return graph


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path of module names, or None (depth-first search with colours)."""
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path[path.index(target):], target] if target in path else [*path, target]
            if target not in state and (found := visit(target, [*path, target])):
                return found
        state[module] = 2
        return None

    return next((found for m in sorted(graph) if m not in state and (found := visit(m, [m]))), None)


def test_the_engine_has_no_import_circle():
    graph = _engine_imports()
    seen = {"run", "execution.executors", "execution.choice", "execution.lanes", "verify", "check"}
    assert seen <= set(graph)  # the parse sees them
    assert {"rundir.store", "rundir.lock", "rundir.names"} <= graph["check"]  # and the wing's modules, by name
    assert _circle(graph) is None, " -> ".join(_circle(graph))


def test_the_import_parse_names_subpackage_modules():
    names = {"__init__", "plan", "rundir", "rundir.names", "rundir.store"}
    parse = ast.parse("from purge_engine.rundir import names\nfrom .store import RunStore\nimport purge_engine.plan")
    found = [_imported(node, "rundir.lock", False, names) for node in parse.body]
    assert found == [{"rundir", "rundir.names"}, {"rundir", "rundir.store"}, {"plan"}]


def test_the_circle_finder_finds_a_circle():
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _circle({"a": {"b"}, "b": set()}) is None
