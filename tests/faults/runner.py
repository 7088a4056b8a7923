"""Runs guard tests in a subprocess, with or without a fault; `python tests/faults/runner.py`
prints the fault table with the result observed for each row (Markdown, for docs/testing.md).

pytest's exit code 1 means tests ran and some failed; 2 an interrupted run or a
collection/import error, 4 a usage error, 5 nothing collected.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import subprocess
import sys
from typing import Optional, Sequence

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # --import-mode=importlib adds no test folder to the path
from fault_plugin import ENV  # pylint: disable=wrong-import-position
from fault_table import FAULTS  # pylint: disable=wrong-import-position


@dataclasses.dataclass(frozen=True)
class GuardRun:
    """The outcome of one pytest subprocess over guard tests."""

    returncode: int
    failed: int
    passed: int
    injected: Optional[str]
    output: str

    @property
    def red(self) -> bool:
        """Tests ran and at least one failed (not an import or usage error)."""
        return self.returncode == 1 and self.failed >= 1


def run_guards(guards: Sequence[str], fault: Optional[str], first_failure: bool = False) -> GuardRun:
    """`python -m pytest -q -p fault_plugin <guards>` from the repository root, $ENV = fault;
    with `first_failure`, pytest stops at the first failing guard (`-x`: red is then known)."""
    env = dict(os.environ)
    env.pop(ENV, None)
    if fault is not None:
        env[ENV] = fault
    paths = [str(ROOT), str(HERE), env.get('PYTHONPATH', '')]
    env['PYTHONPATH'] = os.pathsep.join(p for p in paths if p)
    stop = ['-x'] if first_failure else []
    command = [sys.executable, '-m', 'pytest', '-q', '-p', 'fault_plugin', *stop, *guards]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    summary = ([line for line in result.stdout.splitlines() if re.search(r' in [\d.]+s', line)]
               or [''])[-1]
    counts = {word: int(n) for n, word in re.findall(r'(\d+) (failed|passed)', summary)}
    injected = re.search(r'^fault injected: (\S+)$', result.stdout, re.M)
    return GuardRun(result.returncode, counts.get('failed', 0), counts.get('passed', 0),
                    injected and injected.group(1), result.stdout[-3000:] + result.stderr[-2000:])


def all_guards() -> Sequence[str]:
    """Every guard of the table once. pytest 8 given both a file (or test) and a test inside it
    runs only the narrower one, so ids covered by a broader listed one are dropped."""
    guards = {guard for fault in FAULTS.values() for guard in fault.guards}
    return sorted(g for g in guards
                  if not any(g != h and g.startswith((h + '::', h + '[')) for h in guards))


def main() -> None:
    """Prints one Markdown row per fault: name, patch, guards, observed failed/passed."""
    lines = ['| fault | patch | guard tests | result (guard tests failed / run) |',
             '| --- | --- | --- | --- |']
    for name, fault in sorted(FAULTS.items()):
        run = run_guards(fault.guards, name)
        verdict = 'RED' if run.red else f'survives (exit {run.returncode})'
        guards = '<br>'.join(f'`{guard}`' for guard in fault.guards)
        lines.append(f'| `{name}` | {fault.patch} | {guards} | {verdict}: '
                     f'{run.failed} / {run.failed + run.passed} |')
    control = run_guards(all_guards(), None)
    lines.append(f'| (none: control) | – | every guard above | exit {control.returncode}: '
                 f'{control.failed} failed, {control.passed} passed |')
    sys.stdout.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
