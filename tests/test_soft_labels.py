"""soft_labels.py: per-teacher softmax outputs cached per student slice, summed in teacher order."""

import numpy as np
import torch

from purge_engine.datasets.readers import load_dataset
from purge_engine.events import LabelEvent
from purge_engine.models import build_model
from purge_engine.rundir.store import RunStore
from purge_engine.soft_labels import LabelCache, ensemble_soft_labels


def make_cache(tmp_path, teachers, events):
    bundle = load_dataset("digits")
    return LabelCache(RunStore(tmp_path), lambda t: teachers[t].eval(), lambda ids: bundle.take(ids)[0], 10, 2.0,
                      torch.device("cpu"), events.append, {"request_id": 7}), bundle


def test_a_changed_teacher_costs_only_its_own_forward_passes(tmp_path):
    teachers = {t: build_model("digits-cnn", load_dataset("digits").spec, seed=t) for t in range(3)}
    events: list[LabelEvent] = []
    cache, bundle = make_cache(tmp_path, teachers, events)
    ids = np.arange(40, 70, dtype=np.int64)
    first = cache.get("baseline", 0, 0, 0, (0, 1, 2), ("k0", "k1", "k2"), ids)
    assert cache.label_forwards == 3 * ids.size
    assert torch.equal(first, ensemble_soft_labels(list(teachers.values()), bundle.take(ids)[0], 2.0))
    again = cache.get("baseline", 0, 0, 0, (0, 1, 2), ("k0", "k1", "k2"), ids)
    assert torch.equal(again, first) and cache.label_forwards == 3 * ids.size  # all reused
    teachers[1] = build_model("digits-cnn", bundle.spec, seed=11)
    changed = cache.get("baseline", 0, 0, 0, (0, 1, 2), ("k0", "k1-new", "k2"), ids)
    assert cache.label_forwards == 4 * ids.size  # one teacher's passes, not three
    assert events[-1].kind == "labelled" and events[-1].teacher_ids == (1,)
    assert torch.equal(changed, ensemble_soft_labels(list(teachers.values()), bundle.take(ids)[0], 2.0))


def test_a_slice_that_lost_samples_is_relabelled_by_all_its_teachers(tmp_path):
    teachers = {t: build_model("digits-cnn", load_dataset("digits").spec, seed=t) for t in range(2)}
    cache, _ = make_cache(tmp_path, teachers, [])
    ids = np.arange(10, 30, dtype=np.int64)
    cache.get("purge", 1, 1, 0, (0, 1), ("a", "b"), ids)
    cache.get("purge", 1, 1, 0, (0, 1), ("a", "b"), ids[1:])
    assert cache.label_forwards == 2 * ids.size + 2 * (ids.size - 1)
    stored = RunStore(tmp_path).labels_stem("purge", 1, 1, 0, 1).with_suffix(".json").read_text()
    assert '"request_id": 7' in stored and '"forwards": 19' in stored  # what work.py reads back


def test_no_teacher_left_gives_uniform_labels(tmp_path):
    cache, _ = make_cache(tmp_path, {}, [])
    labels = cache.get("single_teacher", 0, 0, 0, (), (), np.arange(5, dtype=np.int64))
    assert torch.equal(labels, torch.full((5, 10), 0.1)) and cache.label_forwards == 0
