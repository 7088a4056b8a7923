"""The benchmarks draw progress on stderr and keep stdout to their figures.

Runs the cheapest one, `benchmarks/rlwe_bench.py`, on 2 clients x 64 weights,
with and without `--quiet`.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ['--clients', '2', '--weights', '64', '--multiparty']
NUMBER = re.compile(r'[-+]?\d[\d,.]*(e[-+]\d+)?')


def run_bench(*flags):
    cmd = [sys.executable, os.path.join(ROOT, 'benchmarks', 'rlwe_bench.py'), *TINY, *flags]
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def shape(stdout):
    """The stdout lines with every number replaced (timings and key noise vary by run)."""
    return [NUMBER.sub('#', line) for line in stdout.splitlines()]


def test_progress_goes_to_stderr_and_stdout_is_unchanged():
    loud, quiet = run_bench(), run_bench('--quiet')
    for label in ('tfpriv clients', 'multiparty clients'):
        assert f'{label} 0/2 [' in loud.stderr and f'{label} 2/2 [' in loud.stderr
        assert label not in loud.stdout
        assert label not in quiet.stderr
    assert '[' not in quiet.stderr  # no bar at all under --quiet
    assert shape(loud.stdout) == shape(quiet.stdout)
    assert 'max error' in loud.stdout  # the figures are still there
