"""Flag helpers shared by the `train.py` modes (`federated`, `pate`)."""

from __future__ import annotations

from typing import Iterable, List, Optional, Tuple

NumberFlag = Tuple[str, type, Optional[float], str]  # (flag, int or float, default, help)
Check = Tuple[bool, str]  # (the value is fine, the message when it is not)


def add_numbers(parser, specs: Iterable[NumberFlag], prefix: str = '') -> None:
    """Adds one numeric flag per spec; its help ends with "(default <default>)" when it has one."""
    for flag, kind, default, text in specs:
        suffix = '' if default is None else f' (default {default:g})'
        parser.add_argument(flag, type=kind, default=default, help=f'{prefix}{text}{suffix}')


def failed(checks: Iterable[Check]) -> List[str]:
    """The messages of the checks that failed, in order."""
    return [message for ok, message in checks if not ok]
