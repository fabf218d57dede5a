"""Argument checks shared by the layers (private).

Every message names the argument and echoes what was received, in the
keras-rs form: "`dropout` should be in [0, 1). Received: `dropout=1.5`".
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any


def _received(name: str, value: Any) -> str:
    return f"Received: `{name}={value!r}`"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: Any, minimum: int) -> int:
    """Returns `value` as an int, or raises if it is not an int >= minimum."""
    if not _is_int(value) or value < minimum:
        kind = "a positive integer" if minimum == 1 else (
            "a non-negative integer" if minimum == 0
            else f"an integer >= {minimum}")
        raise ValueError(f"`{name}` should be {kind}. {_received(name, value)}")
    return int(value)


def check_int_list(name: str, values: Any, minimum: int = 1,
                   allow_empty: bool = True) -> list[int]:
    """Returns `values` as a list of ints, each >= minimum."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(
            f"`{name}` should be a list of integers. {_received(name, values)}")
    if not allow_empty and len(values) == 0:
        raise ValueError(
            f"`{name}` should not be empty. {_received(name, values)}")
    if any(not _is_int(v) or v < minimum for v in values):
        raise ValueError(
            f"Every entry of `{name}` should be an integer >= {minimum}. "
            f"{_received(name, values)}")
    return [int(v) for v in values]


def check_rate(name: str, value: Any) -> float:
    """Returns `value` as a float in [0, 1), e.g. a dropout rate."""
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not 0.0 <= value < 1.0):
        raise ValueError(
            f"`{name}` should be in [0, 1). {_received(name, value)}")
    return float(value)


def check_non_negative(name: str, value: Any) -> float:
    """Returns `value` as a float >= 0."""
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not value >= 0.0):
        raise ValueError(
            f"`{name}` should be a non-negative number. "
            f"{_received(name, value)}")
    return float(value)


def check_positive(name: str, value: Any) -> float:
    """Returns `value` as a float > 0."""
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not value > 0.0):
        raise ValueError(
            f"`{name}` should be a positive number. {_received(name, value)}")
    return float(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Returns `value` if it is one of `choices`."""
    if value not in choices:
        raise ValueError(f"`{name}` should be one of {list(choices)}. "
                         f"{_received(name, value)}")
    return value
