"""pytest plugin (`-p fault_plugin`, with tests/faults on the path): injects the fault named by
$TFPRIV_FAULT (a row of `fault_table.FAULTS`) at configure time, before any test imports the
library, and undoes it when pytest ends. Without the variable it does nothing."""

from __future__ import annotations

import os
from typing import Optional

import pytest

import fault_table

ENV = 'TFPRIV_FAULT'
_PATCH: Optional[pytest.MonkeyPatch] = None


def pytest_configure(config: pytest.Config) -> None:
    del config
    global _PATCH  # pylint: disable=global-statement
    name = os.environ.get(ENV)
    if not name:
        return
    if name not in fault_table.FAULTS:
        raise pytest.UsageError(f'{ENV}={name!r} is not a fault; one of {sorted(fault_table.FAULTS)}')
    _PATCH = pytest.MonkeyPatch()
    fault_table.FAULTS[name].inject(_PATCH)


def pytest_terminal_summary(terminalreporter) -> None:
    """Names the injected fault in the summary (shown with -q too)."""
    if _PATCH is not None:
        terminalreporter.write_line(f'fault injected: {os.environ[ENV]}')


def pytest_unconfigure(config: pytest.Config) -> None:
    del config
    if _PATCH is not None:
        _PATCH.undo()
