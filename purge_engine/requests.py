"""Sample-id lists as people write them: "3, 17, 40-45". Pure (no torch, no numpy).

One parser for the CLI's --samples and the Forget page's id box, and its inverse for the commands
the dashboard shows. Whether the ids can be forgotten (used by the plan, not yet forgotten) is
Plan.check_request's question; this module only reads the text.
"""

from __future__ import annotations


def parse_ids(text: str, n_pool: int) -> list[int]:
    """'3, 17 42' or '10-14' (commas or spaces; ranges inclusive) -> the ids, sorted.

    ValueError naming `samples` and the allowed range [0, n_pool-1] for text that names no id, a
    token that is not a whole number, a range that runs backwards, an id outside the pool, or an id
    named twice (a request names each sample once); a range is checked before it is expanded, so
    "0-99999999999" is refused at once."""
    ids: set[int] = set()
    tokens = text.replace(",", " ").replace("–", "-").split()  # an en dash, as the screen writes ranges
    if not tokens:
        raise ValueError(f"samples: got {text!r}, which names no id; write whole numbers in [0, {n_pool - 1}] "
                         "separated by commas or spaces, or ranges like 10-14")
    for token in tokens:
        low, high = _bounds(token, n_pool)
        twice = next((i for i in range(low, high + 1) if i in ids), None)  # high < n_pool: a bounded scan
        if twice is not None:
            raise ValueError(f"samples: {twice} is named twice (again in {token!r}); name each id in "
                             f"[0, {n_pool - 1}] once")
        ids.update(range(low, high + 1))
    return sorted(ids)


def _bounds(token: str, n_pool: int) -> tuple[int, int]:
    allowed = f"[0, {n_pool - 1}]"
    first, dash, last = token.partition("-")
    if not _digits(first) or (dash and not _digits(last)):
        raise ValueError(f"samples: got {token!r}; write whole numbers in {allowed} separated by commas or "
                         "spaces, or ranges like 10-14")
    low, high = int(first), int(last) if dash else int(first)
    if low > high:
        raise ValueError(f"samples: range {token!r} runs backwards; write it as {high}-{low}")
    if high >= n_pool:
        raise ValueError(f"samples: got {token!r}, ids must be in {allowed} (ids of the train pool)")
    return low, high


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdecimal() also takes "٣" and full-width digits, which int() reads."""
    return text.isascii() and text.isdecimal()


def format_ids(sample_ids) -> str:
    """[3, 17, 40, 41, 42] -> "3,17,40-42": the inverse of parse_ids for sorted, distinct ids
    (consecutive runs of three or more become ranges)."""
    ids = sorted({int(i) for i in sample_ids})
    parts, start = [], 0
    for end in range(len(ids)):
        if end + 1 == len(ids) or ids[end + 1] != ids[end] + 1:
            run = ids[start:end + 1]
            parts += [f"{run[0]}-{run[-1]}"] if len(run) >= 3 else [str(i) for i in run]
            start = end + 1
    return ",".join(parts)
