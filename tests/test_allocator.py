"""Tests of tfpriv.allocator: after `keep_freed_memory`, NumPy and TensorFlow temporaries stop
page-faulting.

Each case runs in a fresh interpreter (the setting is process-wide and cannot be undone)
and counts minor page faults (getrusage) over a loop that allocates and frees arrays of
the sizes a secure-aggregation round uses (8 MiB, 2.5 MiB). A freshly mapped 4 KiB page
faults once when first written, so a loop that gets new mappings each time faults about
(8 + 2.5) MiB / 4 KiB = 2,688 times per iteration and one that reuses the heap not at all.
TensorFlow's case uses a 48 MB temporary, above glibc's 32 MiB cap on M_MMAP_THRESHOLD:
11,719 faults per call unless TensorFlow pools its memory.
"""

import logging
import os
import subprocess
import sys

import pytest

from tfpriv import allocator

POOL = allocator.TENSORFLOW_POOL


@pytest.fixture(autouse=True)
def _no_tensorflow_pool_variable(monkeypatch):
    """`keep_freed_memory` sets a process-wide variable: each test starts without it and
    leaves the process's own value as it was."""
    monkeypatch.setenv(POOL, 'recorded')
    monkeypatch.delenv(POOL)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The child imports tfpriv from where this process did (under mutation testing, the mutants).
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(allocator.__file__)))

_LOOP = '''
import resource, sys
import numpy as np
from tfpriv import allocator
if sys.argv[1] == 'keep':  # ('environment': the variables of `allocator.environment()`)
    assert allocator.keep_freed_memory().applied
def step():
    x = np.ones(1 << 20); y = x * 2; z = np.ones((5, 1 << 16)); del x, y, z
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
'''


def _faults_per_step(mode: str) -> float:
    env = {**os.environ, 'PYTHONPATH': PACKAGE_ROOT}
    env.update(allocator.environment() if mode == 'environment' else {})
    out = subprocess.run([sys.executable, '-c', _LOOP, mode], capture_output=True, text=True,
                         cwd=ROOT, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


_TF_LOOP = '''
import resource, sys
from tfpriv import allocator
if sys.argv[1] == 'keep':
    assert allocator.keep_freed_memory().tensorflow_pool
import tensorflow as tf
x = tf.range(3000, dtype=tf.float32)
step = tf.function(lambda x: tf.reduce_sum(tf.tile(x, [4000])))  # a 48 MB temporary
for _ in range(3):
    step(x).numpy()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step(x).numpy()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
'''


def _tensorflow_faults_per_step(mode: str, **variables: str) -> float:
    env = {key: value for key, value in os.environ.items() if key != POOL}
    env.update(PYTHONPATH=PACKAGE_ROOT, TF_CPP_MIN_LOG_LEVEL='3', **variables)
    out = subprocess.run([sys.executable, '-c', _TF_LOOP, mode], capture_output=True, text=True,
                         cwd=ROOT, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_kept_memory_pools_tensorflow_s_large_temporaries_unless_the_variable_says_no():
    """A 48 MB tensor is mapped afresh on every call under malloc (48 MB / 4 KiB = 11,719
    faults); TensorFlow's pool reuses it (measured: 0). An explicit setting of the variable
    wins over `keep_freed_memory`."""
    default, kept = _tensorflow_faults_per_step('default'), _tensorflow_faults_per_step('keep')
    assert default > 5000, f'the temporary should fault under malloc, got {default}'
    assert kept < 100, f'TensorFlow should reuse pooled memory, got {kept} faults per step'
    refused = _tensorflow_faults_per_step('default', **{POOL: 'false'})
    assert refused > 5000, refused
    started_with = _tensorflow_faults_per_step('default', **allocator.environment())
    assert started_with < 100, f'the environment should pool too, got {started_with}'


@pytest.mark.parametrize('preset, pooled', [(None, True), ('false', False), ('0', False),
                                             ('TRUE', True), ('1', True)])
def test_the_tensorflow_pool_is_asked_for_unless_the_variable_is_set(monkeypatch, preset, pooled):
    if preset is not None:
        monkeypatch.setenv(POOL, preset)
    assert allocator.keep_freed_memory().tensorflow_pool is pooled
    assert os.environ[POOL] == (preset or 'true')


@pytest.mark.skipif(allocator._glibc() is None, reason='mallopt is glibc-only')
def test_kept_memory_removes_the_page_faults_of_fresh_temporaries():
    default, kept = _faults_per_step('default'), _faults_per_step('keep')
    assert default > 1000, f'the loop should fault with the default policy, got {default}'
    assert kept < 16, f'kept memory should be reused, got {kept} faults per step'
    started_with = _faults_per_step('environment')
    assert started_with < 16, f'the environment should keep memory too, got {started_with}'


def test_settings_are_checked_and_reported():
    with pytest.raises(ValueError, match='^mmap_threshold must be <= 33554432, got 67108864$'):
        allocator.keep_freed_memory(mmap_threshold=64 << 20)
    with pytest.raises(ValueError, match='^mmap_threshold must be >= 1048576, got 1048575$'):
        allocator.keep_freed_memory(mmap_threshold=(1 << 20) - 1)
    assert allocator.environment(mmap_threshold=1 << 20, trim_threshold=1 << 20)[
        'MALLOC_MMAP_THRESHOLD_'] == '1048576'  # both bounds are inclusive
    with pytest.raises(ValueError, match='^trim_threshold must be >= 8388608, got 1048576$'):
        allocator.keep_freed_memory(mmap_threshold=8 << 20, trim_threshold=1 << 20)
    with pytest.raises(TypeError, match='mmap_threshold'):
        allocator.keep_freed_memory(mmap_threshold=1.5e6)
    with pytest.raises(ValueError, match='trim_threshold'):
        allocator.environment(trim_threshold=1 << 20)
    assert allocator.environment() == {'MALLOC_MMAP_THRESHOLD_': str(32 << 20),
                                       'MALLOC_TRIM_THRESHOLD_': str(1 << 30),
                                       'TF_CPU_ALLOCATOR_USE_BFC': 'true'}
    settings = allocator.keep_freed_memory(mmap_threshold=4 << 20, trim_threshold=256 << 20)
    assert (settings.mmap_threshold, settings.trim_threshold) == (4 << 20, 256 << 20)
    assert settings.applied == (allocator._glibc() is not None)


class _FakeLibc:
    """A C library handle with the given symbols; `mallopt` records its calls."""

    def __init__(self, *symbols, accepts=1):
        self.calls = []
        for name in symbols:
            setattr(self, name, self._mallopt if name == 'mallopt' else lambda: b'2.35')
        self._accepts = accepts

    def _mallopt(self, param, value):
        self.calls.append((param, value))
        return self._accepts


@pytest.mark.parametrize('symbols,is_glibc', [
    (('gnu_get_libc_version', 'mallopt'), True), (('mallopt',), False),
    (('gnu_get_libc_version',), False), ((), False)])
def test_only_a_c_library_with_glibc_s_symbols_is_used(monkeypatch, symbols, is_glibc):
    fake = _FakeLibc(*symbols)
    monkeypatch.setattr(allocator.ctypes, 'CDLL', lambda name: fake)
    assert (allocator._glibc() is fake) == is_glibc  # pylint: disable=protected-access


def test_mallopt_gets_glibc_s_parameter_numbers_and_a_refusal_or_other_libc_is_reported(
        monkeypatch, caplog):
    """M_MMAP_THRESHOLD is -3 and M_TRIM_THRESHOLD -1 (glibc's malloc.h); the setting is
    logged; a refusal (mallopt returns 0) or another C library leaves `applied` False with
    the reason."""
    fake = _FakeLibc('gnu_get_libc_version', 'mallopt')
    monkeypatch.setattr(allocator, '_glibc', lambda: fake)
    with caplog.at_level(logging.INFO):
        assert allocator.keep_freed_memory(2 << 20, 4 << 20) == allocator.AllocatorSettings(
            True, 2 << 20, 4 << 20, '', True)
    assert fake.calls == [(-3, 2 << 20), (-1, 4 << 20)]
    assert ('malloc keeps freed memory: mmap threshold 2097152 B, trim threshold 4194304 B; '
            'TensorFlow pool True' in caplog.messages)
    refusing = _FakeLibc('gnu_get_libc_version', 'mallopt', accepts=0)
    monkeypatch.setattr(allocator, '_glibc', lambda: refusing)
    assert allocator.keep_freed_memory(2 << 20, 4 << 20) == allocator.AllocatorSettings(
        False, 2 << 20, 4 << 20, 'mallopt refused', True)
    monkeypatch.setattr(allocator, '_glibc', lambda: None)
    assert allocator.keep_freed_memory() == allocator.AllocatorSettings(
        False, 32 << 20, 1 << 30, 'not glibc: the C library keeps its own policy', True)
