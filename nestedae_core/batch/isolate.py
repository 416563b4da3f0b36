"""Finding the rows of a chunk that fail, by halves.

A batch runs its rows in large chunks; when the model refuses a chunk (one bad
composition among thousands), :func:`split_failures` retries each half, and
halves of the failing halves, down to single rows. The rows that work keep
their results in a few large parts; each row that fails alone gets its own
error. Retries grow with the number of failing rows times the logarithm of the
chunk's size, not with the chunk's size.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from ..errors import NestedAEError

__all__ = ["split_failures"]

T = TypeVar("T")


def split_failures(rows: Sequence[int], attempt: Callable[[list[int]], T]) -> tuple[list[tuple[list[int], T]], dict[int, NestedAEError]]:
    """Run ``attempt`` on ``rows``; where it raises :class:`NestedAEError`, on each half instead, down to single rows.

    Returns the parts that worked, in the rows' order, each as ``(its rows, attempt's
    result)``, and the error of each row that failed on its own. Any other exception
    propagates (a bug is not a bad row).
    """
    parts: list[tuple[list[int], T]] = []
    failed: dict[int, NestedAEError] = {}

    def run(part: list[int]) -> None:
        if not part:
            return
        try:
            parts.append((part, attempt(part)))
        except NestedAEError as exc:
            if len(part) == 1:
                failed[part[0]] = exc
                return
            half = len(part) // 2
            run(part[:half])
            run(part[half:])

    run(list(rows))
    return parts, failed
