"""Meta-test of the fault-injection suite: every fault in `fault_table` turns its guard tests red.

For each row, `python -m pytest -x <guards> -p fault_plugin` runs in a subprocess with
$TFPRIV_FAULT set (`runner.run_guards`; `-x`: one red guard settles the row); it must exit 1 (tests ran, some failed: not an
import or usage error) with failures counted in the summary, and name the fault it
injected. A control run of every guard without a fault must pass, so a red guard is the
fault's doing. A row with a `gap` is a known survivor (strict xfail). The four DP-SGD rows
import TensorFlow (about 20 s each on a loaded 2-core machine); the rest are NumPy only.
"""

from __future__ import annotations

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # importlib import mode
from fault_table import FAULTS  # pylint: disable=wrong-import-position
from runner import all_guards, run_guards  # pylint: disable=wrong-import-position


@pytest.mark.parametrize('name', [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=f'known gap: {fault.gap}'))
    if fault.gap else name for name, fault in sorted(FAULTS.items())])
def test_fault_turns_its_guards_red(name):
    run = run_guards(FAULTS[name].guards, name, first_failure=True)
    assert run.red, run.output
    assert f'fault injected: {name}' in run.output, run.output


def test_guards_pass_without_a_fault():
    run = run_guards(all_guards(), None)
    assert run.returncode == 0 and run.failed == 0 and run.passed > 0, run.output
    assert 'fault injected' not in run.output
