"""The end of every `train.py` mode: a short summary on stdout, the full JSON in `metrics.json`.

Every mode returns a `RunReport`; `format_report` draws it in one shape for
all modes (title, then aligned lines: accuracy, ε with its kind and δ, time,
and where figures, metrics and checkpoints were written). The full figures go
to `<run dir>/metrics.json` (`write_metrics`, an atomic replace); `--json`
prints that JSON to stdout instead of the summary, and nothing else goes to
stdout, so `train.py ... --json | python -m json.tool` works.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

NOT_PRIVATE = 'none (not differentially private)'


def add_arguments(add) -> None:
    """The output flags; `add` is a parser's or argument group's `add_argument`."""
    add('--json', action='store_true',
        help='print the full metrics JSON to stdout instead of the summary')


@dataclasses.dataclass(frozen=True)
class Epsilon:
    """A privacy guarantee of the run: (ε, δ)-DP, ε computed as `kind` says."""

    value: float
    kind: str
    delta: float


@dataclasses.dataclass
class RunReport:
    """What a mode hands back: the headline figures, the files written and the full JSON.

    `accuracy` and `files` are (label, value) pairs in display order; `notes` are
    further (label, text) lines (an audit, an encrypted evaluation, costs);
    `no_privacy` says why `epsilons` is empty; `seconds` is the wall-clock time
    of the whole command (filled in by `train.py`).
    """

    title: str
    accuracy: List[Tuple[str, float]]
    epsilons: List[Epsilon]
    files: List[Tuple[str, str]]
    metrics: Dict[str, Any]
    notes: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    no_privacy: str = NOT_PRIVATE
    seconds: float = 0.0


def epsilon_text(epsilons: Sequence[Epsilon], no_privacy: str = NOT_PRIVATE) -> str:
    """`0.840 (data-dependent) · 9.350 (data-independent), δ = 1e-05` (δ once when shared)."""
    if not epsilons:
        return no_privacy
    deltas = {e.delta for e in epsilons}
    if len(deltas) == 1:
        return ' · '.join(f'{e.value:.3f} ({e.kind})' for e in epsilons) + f', δ = {deltas.pop():g}'
    return ' · '.join(f'{e.value:.3f} ({e.kind}, δ = {e.delta:g})' for e in epsilons)


def duration_text(seconds: float) -> str:
    """`42.1 s`, `9 min 30 s` or `1 h 02 min`."""
    if seconds < 60:
        return f'{seconds:.1f} s'
    minutes, secs = divmod(int(round(seconds)), 60)
    return f'{minutes} min {secs:02d} s' if minutes < 60 else f'{minutes // 60} h {minutes % 60:02d} min'


def _file_lines(files: Sequence[Tuple[str, str]]) -> List[Tuple[str, str]]:
    """Files grouped by label, in order of first appearance (`figures` for several)."""
    grouped: Dict[str, List[str]] = {}
    for label, path in files:
        grouped.setdefault(label, []).append(path)
    return [(label + ('s' if len(paths) > 1 else ''), ', '.join(paths))
            for label, paths in grouped.items()]


def format_report(report: RunReport) -> str:
    """The summary: the title, then one aligned `label  text` line per item."""
    lines = [('accuracy', ' · '.join(f'{value:.4f} {label}' for label, value in report.accuracy)),
             ('ε', epsilon_text(report.epsilons, report.no_privacy)),
             *report.notes,
             ('time', duration_text(report.seconds)),
             *_file_lines(report.files)]
    width = max(len(label) for label, _ in lines) + 2
    return '\n'.join([report.title] + [f'  {label:<{width}}{text}' for label, text in lines])


def _jsonable(value: Any) -> Any:
    """`json.dump`'s fallback: NumPy scalars and arrays as Python numbers and lists, else str."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def to_json(metrics: Dict[str, Any]) -> str:
    """The metrics as indented JSON."""
    return json.dumps(metrics, indent=1, default=_jsonable)


def write_metrics(directory: str, metrics: Dict[str, Any]) -> str:
    """Writes `<directory>/metrics.json` atomically (a temporary file, then a rename); its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, 'metrics.json')
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(to_json(metrics))
    os.replace(tmp, path)
    return path


def overwrite_problems(directory: str, overwrite: bool) -> List[str]:
    """The refusal, as a message, to replace another run's `metrics.json` without `--overwrite`."""
    path = os.path.join(directory, 'metrics.json')
    if overwrite or not os.path.exists(path):
        return []
    return [f'{path} holds the metrics of an earlier run: pass --overwrite to replace them '
            'or --out to write elsewhere']


def resumable(path: str, resume: bool, since: float) -> bool:
    """Whether `path` is this run's to resume: written since `since` (epoch seconds), or
    continued by `--resume` (a file of an earlier run that this one replaces does not count)."""
    return os.path.exists(path) and (resume or os.path.getmtime(path) >= since)


def rerun_command(resume: bool, argv: Optional[Sequence[str]] = None) -> str:
    """The command line of this run again, with `--resume` (and without `--overwrite`) if asked."""
    args = list(sys.argv[1:] if argv is None else argv)
    if resume:
        args = [a for a in args if a != '--overwrite'] + ([] if '--resume' in args else ['--resume'])
    return shlex.join(['python3', 'train.py', *args])
