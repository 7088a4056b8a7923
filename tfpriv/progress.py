"""Progress hooks of the library's long loops: library code reports, the caller renders.

Library code never prints. A loop that can run for more than a few seconds
(PATE teachers, student networks and stage-2 heads, federated rounds, SMPC
evaluation batches) takes an optional `progress` callable and calls
`progress(label, done, total, values)` once with `done = 0` before the first
unit of work and once after each unit (`values`: optional scalars worth showing,
e.g. the round's test accuracy). `train.py` renders the calls on stderr
(`tfpriv.experiments.progress`); None turns reporting off.
"""

from __future__ import annotations

from typing import Iterator, Mapping, Optional, Protocol, Sequence, TypeVar

Item = TypeVar('Item')


class Progress(Protocol):
    """`progress(label, done, total, values=None)`: `done` of `total` units of `label` finished."""

    def __call__(self, label: str, done: int, total: int,
                 values: Optional[Mapping[str, float]] = None) -> None:
        ...


def report(progress: Optional[Progress], label: str, done: int, total: int,
           values: Optional[Mapping[str, float]] = None) -> None:
    """Calls `progress` when there is one (the loops' one-liner)."""
    if progress is not None:
        progress(label, done, total, values)


def each(progress: Optional[Progress], label: str, items: Sequence[Item]) -> Iterator[Item]:
    """Yields `items`, reporting `label` 0/n before the first and i/n after the i-th."""
    report(progress, label, 0, len(items))
    for done, item in enumerate(items, 1):
        yield item
        report(progress, label, done, len(items))


def prefixed(progress: Optional[Progress], prefix: str) -> Optional[Progress]:
    """`progress` with `prefix` put before every label (e.g. 'stage 2 ' before 'student')."""
    if progress is None:
        return None

    def relabelled(label: str, done: int, total: int,
                   values: Optional[Mapping[str, float]] = None) -> None:
        progress(f'{prefix}{label}', done, total, values)

    return relabelled
