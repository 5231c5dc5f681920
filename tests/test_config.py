import json

import pytest

from purge_engine.config import PurgeConfig

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
    ({"n_teachers": 800, "n_students": 1, "teacher_slices": 2}, "n_teachers x teacher_slices", "1437"),
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
    assert PurgeConfig().pool_sizes(1000) == (1000, 1000)
    assert PurgeConfig(student_data="disjoint", student_fraction=0.3).pool_sizes(1000) == (700, 300)
    assert PurgeConfig(teacher_fraction=0.5, student_fraction=0.2).pool_sizes(1000) == (500, 200)
