"""`benchmarks/step_stalls.py`'s summary of per-step wall and CPU times (no TensorFlow)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'benchmarks'))

import step_stalls  # noqa: E402  pylint: disable=wrong-import-position


def test_summary_separates_stalled_steps_from_steps_with_more_work():
    # two fast steps using 2 CPUs, two stalled ones: twice the wall time, the same CPU time
    seconds = [(0.100, 0.200), (0.110, 0.200), (0.200, 0.200), (0.220, 0.200)]
    line = step_stalls.summary('m dp', seconds)
    assert 'wall  100.0 /  155.0 /  220.0 ms' in line and 'CPU  200.0 ms' in line
    assert 'fast half 1.91, slow half 0.95' in line and 'steps > 1.3x fastest  50 %' in line
