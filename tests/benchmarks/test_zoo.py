"""The zoo benchmark's own logic: its token task, scores, failure reporting, watchdog.

NumPy only (no TensorFlow, no torch): the workers themselves are exercised by running
`benchmarks/dp_overhead.py --zoo`.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'benchmarks'))

from zoo import runner, spec, worker  # noqa: E402  pylint: disable=wrong-import-position


def test_tokens_encode_each_row_as_seven_four_pixel_bits():
    image = np.zeros((28, 28), np.float32)
    image[3, 4:8] = 1.0            # group 1 of row 3 fully on -> bit 1
    image[3, 24:28] = 0.5          # group 6 at mean 0.5 > 0.25 -> bit 6
    image[5, 0:4] = [1, 0, 0, 0]   # group 0 at mean 0.25, not above the threshold
    tokens = spec.tokens_from_images(image[None, ..., None])
    expected = np.zeros(28, np.int32)
    expected[3] = 2 + 64
    np.testing.assert_array_equal(tokens[0], expected)
    assert tokens.shape == (1, spec.SEQUENCE_LENGTH) and tokens.max() < spec.VOCAB


def test_score_is_accuracy_or_mse_by_task():
    y = np.array([0, 1, 1, 0])
    assert spec.score(spec.MODELS['binary_credit'], np.array([0.2, 0.9, 0.4, 0.6]), y) == 0.5
    scores = np.eye(3)[[0, 2, 1, 0]]
    assert spec.score(spec.MODELS['mlp'], scores, np.array([0, 1, 1, 0])) == 0.75
    mse = spec.score(spec.MODELS['regression_credit'], np.array([[1.0], [3.0]]), np.array([0.0, 1.0]))
    assert mse == pytest.approx(2.5)


def test_one_line_keeps_the_message_of_tensorflow_graph_errors():
    error = TypeError('in user code:\n\n  File "x.py", line 3\n    foo()\n\nTypeError: bad dtype')
    assert spec.one_line(error) == 'TypeError: bad dtype'
    assert spec.one_line(ValueError('first\nsecond')) == 'ValueError: first'
    assert len(spec.one_line(ValueError('x' * 500))) == 240


def _pair(model, framework, seconds, rss, status='ok', message='', dp='dp'):
    rows = []
    for mode, s, r in (('nodp', seconds[0], rss[0]), (dp, seconds[1], rss[1])):
        result = worker.Result(model, framework, mode, status=status if mode == dp else 'ok',
                               message=message, seconds_per_step=s, peak_rss_mb=r, metric=0.9,
                               cpu_seconds_per_step=None if s is None else s * s,
                               best_seconds_per_step=None if s is None else s / 2)
        rows.append(vars(result))
    return rows


def test_table_ratios_notes_and_goals():
    results = (_pair('mlp', 'keras', (1.0, 1.2), (100, 150))
               + _pair('mlp', 'opacus', (1.0, 3.0), (100, 120))
               + _pair('lstm_text', 'keras', (1.0, 5.0), (100, 250))
               + _pair('lstm_text', 'opacus', (1.0, 4.0), (100, 110))
               + _pair('bigru_text', 'keras', (1.0, None), (100, 900), 'refused', 'no RNNs')
               + _pair('mlp', 'opacus', (1.0, 2.0), (100, 120), dp='ghost')[1:]
               + _pair('lstm_text', 'opacus', (1.0, 1.5), (100, 110), dp='ghost')[1:]
               + _pair('bigru_text', 'opacus', (1.0, None), (100, 110), 'error', 'no DPGRU',
                       dp='ghost'))
    table = runner.markdown_table(results, runner.Settings(['mlp', 'lstm_text', 'bigru_text']))
    mlp, lstm, gru = [line for line in table.splitlines() if line.startswith('| ') and
                      line.split(' | ')[0][2:] in ('mlp', 'lstm_text', 'bigru_text')]
    # wall, CPU (s^2): separate runs / interleaved (none here); memory
    # wall, CPU, fastest step (half the median here, so the same ratio)
    assert " 1.20 / — | 1.44 / — | 1.20 / — | 1.50 |" in mlp and mlp.endswith("| met | met |")
    assert "| yes | 3.00 / — | 9.00 / — | 3.00 / — | 1.20 |" in mlp
    assert mlp.endswith('| yes | 2.00 / — | 4.00 / — | 2.00 / — | met | met |')  # Opacus ghost
    missed = 'time > 2.0x, > Opacus, mem > 2x'
    assert lstm.endswith(f'| yes | 1.50 / — | 2.25 / — | 1.50 / — | {missed} | {missed} |')
    assert 'refused [1]' in gru
    assert gru.endswith('| error [2] | — / — | — / — | — / — | not trained | not trained |')
    assert '[1] keras dp: refused: no RNNs' in table and '[2] opacus ghost: error: no DPGRU' in table


def test_watchdog_ends_a_worker_over_its_memory_limit():
    hog = subprocess.Popen([sys.executable, '-c',
                            "import signal; x = b'x' * (300 << 20); signal.pause()"])
    reason = runner._watch(hog.pid, runner.Settings([], max_rss_mb=100, timeout_s=120))
    assert reason is not None and 'limit 100 MB' in reason
    assert hog.wait(timeout=60) == -9


def test_a_server_that_cannot_start_is_an_error_row_with_its_reason(monkeypatch):
    monkeypatch.setitem(runner.WORKERS, 'keras', 'no_such_worker.py')
    server = runner.Server('keras', runner.Settings(['mlp'], ('keras',)))
    try:
        row = runner.run_one(server, 'mlp', 'dp', 'unused.npz')
    finally:
        server.close()
    assert row['status'] == 'error' and 'no_such_worker.py' in row['message']
    assert row['seconds_per_step'] is None


def _interleaved(model, framework, seconds, dp='dp'):
    return [dict(row, mode=row['mode'] + worker.INTERLEAVED, peak_rss_mb=None)
            for row in _pair(model, framework, seconds, (100, 100), dp=dp)]


def _mlp_row(results):
    table = runner.markdown_table(results, runner.Settings(['mlp']))
    return [line for line in table.splitlines() if line.startswith('| mlp ')][0]


def test_goals_need_both_the_separate_and_the_interleaved_ratio():
    separate = _pair('mlp', 'keras', (1.0, 1.2), (100, 150))
    row = _mlp_row(separate + _interleaved('mlp', 'keras', (1.0, 1.25)))
    assert ' 1.20 / 1.25 | 1.44 / 1.56 | 1.20 / 1.25 | 1.50 |' in row and row.endswith('| met | met |')
    slow = _mlp_row(separate + _interleaved('mlp', 'keras', (1.0, 1.4)))
    assert slow.endswith('| time > 1.3x | time > 1.3x |')
    broken = [dict(r, status='error') for r in _interleaved('mlp', 'keras', (1.0, 1.25))]
    assert ' 1.20 / — | 1.44 / — | 1.20 / — |' in _mlp_row(separate + broken)


def test_the_fastest_step_goal_is_judged_on_its_own_ratio():
    rows = _pair('mlp', 'keras', (1.0, 1.5), (100, 150)) + _interleaved('mlp', 'keras', (1.0, 1.4))
    rows = [dict(r, best_seconds_per_step=0.5 if r['mode'].startswith('nodp') else 0.6)
            for r in rows]
    assert _mlp_row(rows).endswith('| 1.20 / 1.20 | 1.50 | 0.900 / 0.900 | not run | — / — | '
                                   '— / — | — / — | — | — / — | not run | — | — | — | '
                                   'time > 1.3x | met |')
    old = [{k: v for k, v in r.items() if k != 'best_seconds_per_step'} for r in rows]
    assert _mlp_row(old).endswith('| time > 1.3x | — |')  # runs saved before the column


def test_opacus_is_beaten_only_if_its_faster_mode_is_in_each_measurement():
    ours = _pair('mlp', 'keras', (1.0, 1.2), (100, 150)) + _interleaved('mlp', 'keras', (1.0, 1.25))
    hooks = _pair('mlp', 'opacus', (1.0, 1.5), (100, 120)) + _interleaved('mlp', 'opacus', (1.0, 3.0))
    ghost = (_pair('mlp', 'opacus', (1.0, 9.0), (100, 120), dp='ghost')[1:]
             + _interleaved('mlp', 'opacus', (1.0, 1.1), dp='ghost')[1:])
    assert _mlp_row(ours + hooks).endswith('| met | met |')
    row = _mlp_row(ours + hooks + ghost)  # interleaved: 1.25 > ghost's 1.1
    assert '| 9.00 / 1.10 |' in row and row.endswith('| > Opacus | > Opacus |')


def _repeat(rows, repeat):
    return [dict(row, repeat=repeat) for row in rows]


def test_repeated_runs_give_the_median_of_each_run_s_own_ratio():
    results = []
    for repeat, (base, dp, inter) in enumerate(((1.0, 1.2, 1.1), (2.0, 3.2, 1.2), (1.0, 1.1, 1.4))):
        results += _repeat(_pair('mlp', 'keras', (base, dp), (100, 150))
                           + _interleaved('mlp', 'keras', (1.0, inter)), repeat)
    row = _mlp_row(results)
    # separate: median of 1.2, 1.6, 1.1 (not 5.5 / 4.0); interleaved: median of 1.1, 1.2, 1.4
    assert ' 1.20 / 1.20 |' in row and row.endswith('| met | met |')
    per_repeat = runner.repeat_table(results, runner.Settings(['mlp'], repeats=3))
    assert per_repeat.splitlines()[2].startswith('| mlp | 1.20, 1.60, 1.10 | 1.10, 1.20, 1.40 |')
    slow = results + _repeat(_pair('mlp', 'keras', (1.0, 1.5), (100, 150)), 3)
    slow += _repeat(_pair('mlp', 'keras', (1.0, 1.5), (100, 150)), 4)
    assert _mlp_row(slow).endswith('| time > 1.3x | time > 1.3x |')  # median of 1.1, 1.2, 1.5, 1.5, 1.6


def test_a_failure_in_any_repeat_is_reported():
    ok = _pair('mlp', 'keras', (1.0, 1.2), (100, 150))
    failed = _repeat(_pair('mlp', 'keras', (1.0, None), (100, 150), 'error', 'out of memory'), 1)
    table = runner.markdown_table(ok + failed, runner.Settings(['mlp'], repeats=2))
    assert '| error [1] |' in table and '[1] keras dp: error: out of memory' in table


def test_the_runner_alternates_the_order_of_the_separate_runs(monkeypatch):
    order = []
    monkeypatch.setattr(runner, 'run_one', lambda server, model, mode, data: order.append(mode) or
                        vars(worker.Result(model, 'keras', mode)))
    monkeypatch.setattr(runner, 'run_interleaved', lambda server, model, data: [])
    server = runner.Server('keras', runner.Settings(['mlp']))
    rows = runner._run_repeat(server, 'mlp', 'unused.npz', 0, lambda *a, **k: None)
    rows += runner._run_repeat(server, 'mlp', 'unused.npz', 1, lambda *a, **k: None)
    assert order == ['nodp', 'dp', 'dp', 'nodp'] and [r['repeat'] for r in rows] == [0, 0, 1, 1]
