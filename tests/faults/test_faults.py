"""Meta-test of the fault-injection suite: every fault in `fault_table` turns its guard tests red.

For each row, `python -m pytest -x <guards> -p fault_plugin` runs in a subprocess with
$TFPRIV_FAULT set (`runner.run_guards`; `-x`: one red guard settles the row); it must exit 1
(tests ran, some failed: not an import or usage error) with failures counted in the
summary, and name the fault it injected (read from the whole output: a failing guard's
message can be long). The control is the suite's own run of the
guards, without a fault (last test). A row with a `gap` is a known survivor (strict
xfail). The DP-SGD and DP-FedAvg rows import TensorFlow (10-20 s each on a loaded 2-core
machine); the rest are NumPy only.
"""

from __future__ import annotations

import pathlib
import re
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # importlib import mode
import fault_plugin  # pylint: disable=wrong-import-position
from fault_plugin import ENV  # pylint: disable=wrong-import-position
from fault_table import FAULTS  # pylint: disable=wrong-import-position
from runner import all_guards, run_guards  # pylint: disable=wrong-import-position


@pytest.mark.parametrize('name', [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=f'known gap: {fault.gap}'))
    if fault.gap else name for name, fault in sorted(FAULTS.items())])
def test_fault_turns_its_guards_red(name):
    run = run_guards(FAULTS[name].guards, name, first_failure=True)
    assert run.red, run.output
    assert run.injected == name, run.output


def test_without_a_fault_the_plugin_changes_nothing_and_every_guard_is_a_suite_test(monkeypatch):
    """The control. Without $TFPRIV_FAULT the plugin patches nothing, and every guard names a
    test function of this suite, so the suite's own (green) run of the guards is the control
    run: a row's red guard is its fault's doing. (Rerunning every guard here cost 40 s.)"""
    monkeypatch.delenv(ENV, raising=False)
    fault_plugin.pytest_configure(None)
    assert fault_plugin._PATCH is None  # pylint: disable=protected-access
    root = pathlib.Path(__file__).resolve().parents[2]
    for guard in all_guards():
        path, _, test = guard.partition('::')
        assert path.startswith('tests/') and (root / path).is_file(), guard
        name = test.split('[')[0]
        assert not name or re.search(rf'^def {name}\(', (root / path).read_text(), re.M), guard
