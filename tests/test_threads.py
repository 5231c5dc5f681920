"""One torch thread count per process at a time (threads.py): a job that trains on another count
waits, saying so, instead of changing the count under a running job; evaluation never waits. Two runs
with different thread counts trained side by side in one process equal each trained alone."""

import dataclasses
import threading
import time

import pytest
import torch

from purge_engine.events import Cancelled
from purge_engine.experiment import Experiment
from purge_engine.threads import held_count, hold_threads


@pytest.fixture(autouse=True)
def one_thread_after():
    yield
    torch.set_num_threads(1)


def hold_in_thread(count: int, release: threading.Event, seen: list) -> threading.Thread:
    entered = threading.Event()

    def hold():
        with hold_threads(count):
            entered.set()
            while not release.wait(0.01):
                seen.append(torch.get_num_threads())

    thread = threading.Thread(target=hold)
    thread.start()
    assert entered.wait(10)
    return thread


def test_a_strict_holder_of_another_count_waits_and_never_changes_the_running_count():
    release, seen, said = threading.Event(), [], []
    first = hold_in_thread(1, release, seen)
    done = []

    def second():
        with hold_threads(2, on_wait=said.append) as count:
            done.append((count, torch.get_num_threads()))

    waiter = threading.Thread(target=second)
    waiter.start()
    time.sleep(0.3)
    assert done == [] and held_count() == 1
    release.set()
    first.join(10)
    waiter.join(10)
    assert set(seen) == {1} and len(seen) > 5  # the first holder's count never moved
    assert done == [(2, 2)]
    assert "another job in this process runs with 1 torch threads" in said[0]


def test_a_lenient_holder_runs_on_the_held_count_without_waiting():
    release, seen = threading.Event(), []
    first = hold_in_thread(1, release, seen)
    try:
        with hold_threads(2, strict=False) as count:
            assert count == 1 and torch.get_num_threads() == 1
    finally:
        release.set()
        first.join(10)
    with hold_threads(2, strict=False) as count:  # nobody holds: its own count
        assert count == 2 and torch.get_num_threads() == 2


def test_a_waiting_holder_is_cancelled_by_should_stop():
    release, seen = threading.Event(), []
    first = hold_in_thread(1, release, seen)
    try:
        with pytest.raises(Cancelled, match="1 torch threads"), hold_threads(2, should_stop=lambda: True):
            pass
    finally:
        release.set()
        first.join(10)
    assert held_count() == 0


def test_holds_nest_in_one_thread_and_refuse_to_switch_inside():
    with hold_threads(1):
        with hold_threads(1) as inner:
            assert inner == 1
        with hold_threads(2, strict=False) as lenient:
            assert lenient == 1
        with pytest.raises(ValueError, match="threads: .* cannot switch to 2"), hold_threads(2):
            pass
    assert held_count() == 0


def test_two_runs_with_other_thread_counts_trained_side_by_side_equal_each_trained_alone(tiny_config, tmp_path):
    configs = {1: tiny_config, 2: dataclasses.replace(tiny_config, threads=2)}
    alone = {}
    for n, config in configs.items():
        exp = Experiment.create(config, tmp_path / f"alone-{n}")
        exp.train(methods=["purge"])
        alone[n] = exp.param_hashes(["teacher", "purge"])
    together, errors = {}, []

    def train(n):
        try:
            exp = Experiment.create(configs[n], tmp_path / f"together-{n}")
            exp.train(methods=["purge"])
            together[n] = exp.param_hashes(["teacher", "purge"])
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=train, args=(n,)) for n in configs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert errors == [] and together == alone
