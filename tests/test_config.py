"""config.py: PurgeConfig validation naming field, value and range; JSON round trip; fingerprint; field metadata
read by validate() and the CLI help."""

import json
from dataclasses import fields

import pytest

from purge_engine.config import PurgeConfig, check_field, field_choices, field_help, field_meta, field_range

FIELDS = [f.name for f in fields(PurgeConfig)]

BAD_FIELDS = [
    # (changes, field named in the message, a fragment of the allowed range)
    ({"dataset": "imagenet"}, "dataset", "digits"),
    ({"n_teachers": 0}, "n_teachers", "[1,"),
    ({"n_teachers": -3}, "n_teachers", "[1,"),
    ({"n_teachers": 2.5}, "n_teachers", "integer"),
    ({"n_students": 0}, "n_students", "[1,"),
    ({"n_students": 9}, "n_students", "n_teachers=8"),
    ({"teacher_slices": 0}, "teacher_slices", "[1,"),
    ({"student_slices": -1}, "student_slices", "[1,"),
    ({"student_fraction": 0.0}, "student_fraction", "(0, 1.0]"),
    ({"student_fraction": 1.5}, "student_fraction", "(0, 1.0]"),
    ({"teacher_fraction": -0.2}, "teacher_fraction", "(0, 1.0]"),
    ({"student_data": "mixed"}, "student_data", "overlap, disjoint"),
    ({"student_data": "disjoint", "student_fraction": 1.0}, "student_fraction", "(0, 1)"),
    ({"epochs": 0}, "epochs", "[1,"),
    ({"batch_size": 0}, "batch_size", "[1,"),
    ({"teacher_lr": 0.0}, "teacher_lr", "(0,"),
    ({"student_lr": -1e-3}, "student_lr", "(0,"),
    ({"temperature": 0}, "temperature", "(0,"),
    ({"alpha": 1.5}, "alpha", "[0.0, 1.0]"),
    ({"teacher_model": "vgg99"}, "teacher_model", "digits-cnn"),
    ({"student_model": "rgb-cnn"}, "student_model", "digits-cnn"),
    ({"aggregation": "median"}, "aggregation", "mean, vote"),
    ({"seed": -1}, "seed", "[0,"),
    ({"device": "tpu"}, "device", "auto, cpu, cuda"),
    ({"threads": -2}, "threads", "[0,"),
    ({"data_root": ""}, "data_root", "non-empty"),
    ({"n_teachers": 800, "n_students": 1, "teacher_slices": 2}, "n_teachers x teacher_slices", "983"),  # 70 % of 1404
    ({"n_teachers": 8, "n_students": 1, "student_slices": 200}, "student_slices", "student samples"),
    ({"n_teachers": 1500, "n_students": 1, "teacher_slices": 1}, "n_teachers x teacher_slices", "at most"),
]


@pytest.mark.parametrize("changes,field,allowed", BAD_FIELDS, ids=[str(c) for c, _, _ in BAD_FIELDS])
def test_bad_field_is_rejected_with_its_name_value_and_range(changes, field, allowed):
    with pytest.raises(ValueError) as err:
        PurgeConfig(**changes).validate()
    message = str(err.value)
    assert message.startswith(field) or field in message
    assert allowed in message


def test_cuda_asked_for_but_absent_is_rejected(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device: got 'cuda'.*no CUDA device"):
        PurgeConfig(device="cuda").validate()


def test_defaults_are_valid_and_validate_returns_the_config():
    config = PurgeConfig()
    assert config.validate() is config


def test_json_round_trip_keeps_every_field():
    config = PurgeConfig(dataset="mnist-5k", n_teachers=6, n_students=3, alpha=0.25, student_data="disjoint",
                         student_fraction=0.4)
    again = PurgeConfig.from_json(config.to_json())
    assert again == config
    assert json.loads(config.to_json())["n_teachers"] == 6


def test_unknown_json_field_is_named():
    with pytest.raises(ValueError, match="unknown field.*n_shards"):
        PurgeConfig.from_dict({"n_shards": 3})


def test_fingerprint_is_stable_and_tracks_what_is_trained():
    a, b = PurgeConfig(), PurgeConfig()
    assert a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 16
    assert a.fingerprint() != a.replace(seed=1).fingerprint()
    assert a.fingerprint() != a.replace(student_slices=3).fingerprint()
    assert a.fingerprint() == a.replace(data_root="/elsewhere", aggregation="vote").fingerprint()


def test_auto_models_resolve_per_dataset():
    assert PurgeConfig().teacher_arch == "digits-cnn"
    assert PurgeConfig(dataset="mnist-5k").student_arch == "mnist-cnn"
    assert PurgeConfig(dataset="mnist-5k", student_model="mlp").student_arch == "mlp"


def test_pool_sizes_follow_the_student_data_mode():
    assert PurgeConfig(student_data="overlap", student_fraction=1.0).pool_sizes(1000) == (1000, 1000)
    assert PurgeConfig().pool_sizes(1000) == (700, 300)  # the defaults: 30 % held out for the students
    assert PurgeConfig(student_data="disjoint", student_fraction=0.3).pool_sizes(1000) == (700, 300)
    overlap = PurgeConfig(teacher_fraction=0.5, student_fraction=0.2, student_data="overlap")
    assert overlap.pool_sizes(1000) == (500, 200)


# -- field metadata: one place for each knob's meaning and range ---------------------------------
@pytest.mark.parametrize("name", FIELDS)
def test_every_field_carries_a_label_a_help_sentence_and_what_it_may_be(name):
    meta, default = field_meta(name), getattr(PurgeConfig(), name)
    assert meta["label"] and meta["help"].endswith(".") and field_help(name) == meta["help"]
    assert meta["kind"] in ("int", "float", "str", "path")
    if meta["kind"] in ("int", "float"):
        low, high = field_range(name)
        assert low < high and low <= default <= high
    elif meta["kind"] == "str":
        assert default in field_choices(name)
    check_field(name, default)  # every default is allowed by its own metadata


def _allowed(name: str) -> str:
    """The allowed range as an error message writes it, built from the raw metadata."""
    meta = field_meta(name)
    if "choices" in meta:
        return "one of " + ", ".join(meta["choices"])
    kind = "an integer" if meta["kind"] == "int" else "a number"
    return f"{kind} in {'(' if meta.get('min_open') else '['}{meta['min']}, {meta['max']}]"


@pytest.mark.parametrize("name, bad", [("n_teachers", 0), ("teacher_slices", 10_001), ("epochs", 2.0),
                                       ("batch_size", 0), ("seed", -1), ("threads", 10**6), ("student_fraction", 0.0),
                                       ("teacher_lr", 11.0), ("alpha", -0.5), ("aggregation", "median"),
                                       ("device", "tpu"), ("memory_format", "nhwc")])
def test_validate_names_the_field_and_the_range_its_metadata_gives(name, bad):
    with pytest.raises(ValueError) as err:
        PurgeConfig(**{name: bad}).validate()
    assert str(err.value) == f"{name}: got {bad!r}, must be {_allowed(name)}"


def test_a_bound_set_by_another_field_names_that_field_and_its_value():
    assert field_meta("n_students")["max_field"] == "n_teachers"
    with pytest.raises(ValueError, match=r"^n_students: got 5, must be an integer in \[1, n_teachers=4\]$"):
        PurgeConfig(n_teachers=4, n_students=5).validate()


@pytest.mark.parametrize("name", FIELDS)
def test_the_cli_help_of_each_config_flag_is_the_field_metadata(name, capsys, monkeypatch):
    from purge_engine.cli import flag_for, flag_help, main

    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps help to the terminal: one line per flag here
    with pytest.raises(SystemExit):
        main(["plan", "--help"])
    out = capsys.readouterr().out
    assert flag_help(name).startswith(field_help(name)) and flag_help(name) in out
    assert flag_for(name) in out


def test_the_cli_refuses_a_choice_the_metadata_does_not_list(capsys):
    from purge_engine.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["plan", "--aggregation", "median"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'median'" in capsys.readouterr().err
