"""requests.py: sample-id lists as people type them ("3, 17, 40-45"), errors naming the token, and back."""

import time

import pytest

from purge_engine.requests import format_ids, parse_ids


def test_lists_spaces_and_ranges_read_the_same_everywhere():
    assert parse_ids("3, 17,40-42", 100) == [3, 17, 40, 41, 42]
    assert parse_ids("42 3  17", 100) == [3, 17, 42]
    assert parse_ids("10–12, 13", 100) == [10, 11, 12, 13]  # the en dash the screen writes


@pytest.mark.parametrize("text, message", [
    ("10–12, 11", r"samples: 11 is named twice \(again in '11'\); name each id in \[0, 99\] once"),
    ("3 3", r"samples: 3 is named twice"),
    ("", r"samples: got '', which names no id; write whole numbers in \[0, 99\]"),
    (" , ", r"samples: got ' , ', which names no id"),
])
def test_an_empty_list_or_an_id_named_twice_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_ids(text, 100)


@pytest.mark.parametrize("text, message", [
    ("3,x", r"samples: got 'x'; write whole numbers in \[0, 99\]"),
    ("-4", r"samples: got '-4'"),
    ("3-", r"samples: got '3-'"),
    ("1.5", r"samples: got '1.5'"),
    ("14-10", r"samples: range '14-10' runs backwards; write it as 10-14"),
    ("100", r"samples: got '100', ids must be in \[0, 99\]"),
])
def test_bad_tokens_are_named_with_the_allowed_range(text, message):
    with pytest.raises(ValueError, match=message):
        parse_ids(text, 100)


def test_a_range_wider_than_the_pool_is_refused_before_it_is_built():
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"ids must be in \[0, 1796\]"):
        parse_ids("0-99999999999", 1797)
    assert time.perf_counter() - start < 0.1


def test_format_ids_is_the_inverse_of_parse_ids():
    ids = [0, 1, 2, 3, 7, 9, 10, 20, 21, 22]
    assert format_ids(ids) == "0-3,7,9,10,20-22"
    assert parse_ids(format_ids(ids), 100) == ids
    assert format_ids([5, 3, 3]) == "3,5"
