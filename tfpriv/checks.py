"""Argument checks shared by the whole library: one message shape for every bad value.

Each check returns the value (converted to a plain Python type) so it can be
used inline: `self.threshold = checks.integer('threshold', threshold, minimum=2)`.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np


def integer(name: str, value, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    """`value` as an int in [minimum, maximum]; bools and floats are refused (TypeError)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f'{name} must be an int, got {type(value).__name__} {value!r}')
    value = int(value)
    _check_range(name, value, minimum, maximum)
    return value


def number(name: str, value, minimum: Optional[float] = None, maximum: Optional[float] = None,
           strict_minimum: bool = False) -> float:
    """`value` as a finite float in [minimum, maximum] (or (minimum, maximum] when strict)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                      np.floating)):
        raise TypeError(f'{name} must be a number, got {type(value).__name__} {value!r}')
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f'{name} must be finite, got {value}')
    if strict_minimum and minimum is not None and not value > minimum:
        raise ValueError(f'{name} must be > {minimum}, got {value}')
    _check_range(name, value, minimum, maximum)
    return value


def choice(name: str, value, allowed) -> str:
    """`value` if it is one of `allowed`, else a ValueError listing them."""
    if value not in allowed:
        raise ValueError(f'{name} must be one of {tuple(allowed)}, got {value!r}')
    return value


def _check_range(name: str, value, minimum, maximum) -> None:
    if minimum is not None and value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value}')
    if maximum is not None and value > maximum:
        raise ValueError(f'{name} must be <= {maximum}, got {value}')
