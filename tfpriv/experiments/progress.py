"""The progress display of `train.py`: `tfpriv.progress` reports drawn on stderr.

One line per label, in the style of the Keras progress bar:
`teachers 37/250 [=====>........................] 15% - 1:12 - ETA 6:54 - round 1`.
On a terminal under `--verbose 1` the line is redrawn in place (at most ten
times a second); into a file or a pipe, and under `--verbose 2`, a line is
written when a label starts, at most every `LOG_INTERVAL_S` seconds after, and
when it completes, so logs stay short. `--verbose 0` draws nothing. The ETA
assumes the remaining units take as long as the finished ones of this label
took on average.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Callable, Mapping, Optional, TextIO

BAR_WIDTH = 30
LOG_INTERVAL_S = 10.0
REDRAW_INTERVAL_S = 0.1


def clock_text(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from an hour on."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f'{hours}:{minutes:02d}:{secs:02d}' if hours else f'{minutes}:{secs:02d}'


def bar_line(label: str, done: int, total: int, elapsed: float, eta: Optional[float],
             values: Optional[Mapping[str, float]] = None) -> str:
    """One progress line: label, count, bar, percent, elapsed, ETA and the values."""
    fraction = min(1.0, done / total) if total > 0 else 1.0
    filled = int(BAR_WIDTH * fraction)
    arrow = '>' if 0 < filled < BAR_WIDTH else ''
    bar = ('=' * max(0, filled - len(arrow)) + arrow).ljust(BAR_WIDTH, '.')
    parts = [f'{label} {done}/{total} [{bar}] {100 * fraction:3.0f}%', clock_text(elapsed)]
    if eta is not None and done < total:
        parts.append(f'ETA {clock_text(eta)}')
    parts += [f'{key} {value:.4g}' for key, value in (values or {}).items()]
    return ' - '.join(parts)


class StderrProgress:
    """A `tfpriv.progress.Progress` that draws on a stream (stderr); `status` adds plain lines."""

    def __init__(self, verbose: int = 1, stream: Optional[TextIO] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stderr
        self._clock = clock
        isatty = getattr(self.stream, 'isatty', None)
        self._redraw = verbose == 1 and bool(isatty and isatty())
        self._label: Optional[str] = None
        self._first = self._last = 0  # `done` when the label started / at the last call
        self._started = self._shown = 0.0
        self._open = False  # a redrawn line still waits for its newline

    def status(self, text: str) -> None:
        """A line saying what happens next (e.g. loading the data), unless `verbose` is 0."""
        if self.verbose:
            self._write(text + '\n')

    def __call__(self, label: str, done: int, total: int,
                 values: Optional[Mapping[str, float]] = None) -> None:
        if not self.verbose:
            return
        now = self._clock()
        if label != self._label or done <= self._last:  # a new label, or the same one restarted
            self._label, self._first, self._started, self._shown = label, done, now, -math.inf
        self._last = done
        finished = done >= total
        if not finished and now - self._shown < (REDRAW_INTERVAL_S if self._redraw else LOG_INTERVAL_S):
            return
        self._shown = now
        elapsed = now - self._started
        eta = elapsed / (done - self._first) * (total - done) if done > self._first else None
        line = bar_line(label, done, total, elapsed, eta, values)
        if self._redraw:
            self.stream.write('\r' + line + '\x1b[K' + ('\n' if finished else ''))
            self.stream.flush()
            self._open = not finished
        else:
            self._write(line + '\n')

    def _write(self, text: str) -> None:
        """Writes whole lines, ending a redrawn line first."""
        if self._open:
            text, self._open = '\n' + text, False
        self.stream.write(text)
        self.stream.flush()
