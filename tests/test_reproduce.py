"""reproduce.py: the command and the Python snippet rebuild the same config and replay earlier requests,
without torch."""

import shlex

from purge_engine.cli import build_parser, config_from_args
from purge_engine.config import PRESETS, PurgeConfig
from purge_engine.datasets.sources import locate
from purge_engine.reproduce import reproduce_command, reproduce_snippet


def test_reproduce_command_and_snippet_rebuild_the_same_config(tmp_path):
    for i, overrides in enumerate(PRESETS.values()):
        config = PurgeConfig(**overrides)
        train, forget = reproduce_command(config, "runs/x", sample_ids=[3, 17]).splitlines()
        args = build_parser().parse_args(shlex.split(train)[3:])
        assert config_from_args(args) == config
        assert forget.endswith("--samples 3,17 --verify")
        if locate(config.dataset, config.data_root) is None:
            continue  # the paper-scale preset's Fashion-MNIST where Debian's package is not installed
        namespace: dict = {}
        snippet = reproduce_snippet(config, str(tmp_path / f"run-{i}"))
        exec(snippet.replace("exp.train()", "").replace("print(exp.evaluate()['accuracy'])", ""), namespace)
        assert namespace["exp"].config == config  # threads included: the command reproduces the run


def test_earlier_requests_replay_in_order_with_ranges_the_cli_reads_back():
    lines = reproduce_command(PurgeConfig(), "runs/x", sample_ids=[9], requests=[[5, 1, 2, 3, 4], [7]]).splitlines()
    assert lines[0] == "python -m purge_engine train --run runs/x"  # defaults need no flag
    assert lines[1].endswith("--samples 1-5") and lines[2].endswith("--samples 7")
    args = build_parser().parse_args(shlex.split(lines[1])[3:])
    assert args.samples == "1-5"
    snippet = reproduce_snippet(PurgeConfig(), "runs/x", sample_ids=[9], requests=[[5, 1]])
    assert snippet.index("exp.forget([5, 1])") < snippet.index("report = exp.forget([9])")


def test_reproduce_needs_no_torch():
    import subprocess
    import sys

    code = "import sys, purge_engine.reproduce; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
