"""`benchmarks/secagg_bench.py`'s choice of SecAgg+ settings and its keystream floor (no TensorFlow)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

from benchmarks import secagg_bench  # noqa: E402  pylint: disable=wrong-import-position


def test_settings_include_the_default_degree_the_complete_graph_and_the_sparse_graph():
    assert secagg_bench.masking_settings(10) == [
        (9, 5, 'stochastic'), (8, 5, 'stochastic'), (4, 3, 'stochastic'), (4, 3, 'deterministic')]
    assert secagg_bench.masking_settings(100) == [(8, 5, 'stochastic'), (14, 8, 'stochastic')]
    # at n = 5 the default degree is the complete graph: listed once
    assert secagg_bench.masking_settings(5) == [(4, 3, 'stochastic'), (4, 3, 'deterministic')]


def test_keystream_rates_names_every_stream_cipher(capsys):
    secagg_bench.keystream_rates(1 << 16)
    line = capsys.readouterr().out
    for name in ('AES-128-CTR', 'AES-256-CTR', 'ChaCha20'):
        assert f'{name} ' in line and ' GB/s' in line
