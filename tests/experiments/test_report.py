"""The end-of-run summary, metrics.json, the stderr progress display and the library hooks."""

import io
import json
import os

import numpy as np

from tfpriv import progress as hooks
from tfpriv.dp.pate.transfer import train_heads
from tfpriv.experiments import report
from tfpriv.experiments.progress import StderrProgress


def _report(**changes):
    fields = dict(title='PATE: 2 teachers', accuracy=[('student', 0.991), ('answers', 0.5)],
                  epsilons=[report.Epsilon(0.84, 'data-dependent', 1e-5),
                            report.Epsilon(9.35, 'data-independent', 1e-5)],
                  files=[('figure', 'a.png'), ('figure', 'b.png'), ('metrics', 'runs/pate/metrics.json')],
                  metrics={}, seconds=570.0)
    fields.update(changes)
    return report.RunReport(**fields)


def test_summary_has_the_same_aligned_lines_for_every_mode():
    lines = report.format_report(_report()).splitlines()
    assert lines[0] == 'PATE: 2 teachers'
    assert [line.split()[0] for line in lines[1:]] == ['accuracy', 'ε', 'time', 'figures', 'metrics']
    starts = {len(line) - len(line[2:].split(maxsplit=1)[1]) for line in lines[1:] if line[2:] != 'ε'}
    assert len(starts) == 1  # every value starts in the same column
    assert lines[1].split(maxsplit=1)[1] == '0.9910 student · 0.5000 answers'
    assert lines[2].endswith('0.840 (data-dependent) · 9.350 (data-independent), δ = 1e-05')
    assert lines[3].endswith('9 min 30 s') and lines[4].endswith('a.png, b.png')


def test_summary_without_dp_says_so_and_keeps_each_delta_apart():
    plain = report.format_report(_report(epsilons=[], no_privacy='none (no DP)')).splitlines()
    assert plain[2].split(maxsplit=1)[1] == 'none (no DP)'
    mixed = report.epsilon_text([report.Epsilon(1.0, 'RDP', 1e-5), report.Epsilon(2.0, 'RDP', 1e-4)])
    assert mixed == '1.000 (RDP, δ = 1e-05) · 2.000 (RDP, δ = 0.0001)'
    assert report.duration_text(42.06) == '42.1 s' and report.duration_text(3720) == '1 h 02 min'


def test_metrics_are_written_atomically_with_numpy_values(tmp_path):
    path = report.write_metrics(str(tmp_path / 'run'), {'accuracy': np.float32(0.5), 'counts': np.arange(3),
                                                        'nan': float('nan')})
    assert path == str(tmp_path / 'run' / 'metrics.json')
    assert os.listdir(tmp_path / 'run') == ['metrics.json']  # no temporary file left behind
    loaded = json.loads((tmp_path / 'run' / 'metrics.json').read_text())
    assert loaded['accuracy'] == 0.5 and loaded['counts'] == [0, 1, 2] and np.isnan(loaded['nan'])


def test_an_earlier_run_is_replaced_only_with_overwrite(tmp_path):
    assert report.overwrite_problems(str(tmp_path), overwrite=False) == []
    report.write_metrics(str(tmp_path), {'a': 1})
    [problem] = report.overwrite_problems(str(tmp_path), overwrite=False)
    assert 'metrics.json' in problem and '--overwrite' in problem
    assert report.overwrite_problems(str(tmp_path), overwrite=True) == []


def test_rerun_command_adds_resume_once_and_drops_overwrite():
    assert report.rerun_command(True, ['--federated', '--overwrite']) == \
        'python3 train.py --federated --resume'
    assert report.rerun_command(True, ['--resume']) == 'python3 train.py --resume'
    assert report.rerun_command(False, ['--pate', '--out', 'a b']) == "python3 train.py --pate --out 'a b'"


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_logs_start_throttled_updates_and_end_with_an_eta():
    stream, clock = io.StringIO(), _Clock()
    bar = StderrProgress(1, stream, clock)
    bar('teachers', 0, 4)
    for done in range(1, 5):
        clock.now += 4.0  # 4 s per teacher: a log line at most every 10 s
        bar('teachers', done, 4, {'round': 1})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # start, after 12 s (3/4), end
    assert lines[0].startswith('teachers 0/4 [') and '0%' in lines[0]
    assert lines[1].startswith('teachers 3/4 [') and 'ETA 0:04' in lines[1] and 'round 1' in lines[1]
    assert lines[2].startswith('teachers 4/4 [') and '100%' in lines[2] and 'ETA' not in lines[2]


def test_progress_redraws_one_line_on_a_terminal_and_is_silent_at_verbose_0():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream, clock = Tty(), _Clock()
    bar = StderrProgress(1, stream, clock)
    for done in range(3):
        clock.now += 1.0
        bar('round', done, 2)
    bar.status('done')
    text = stream.getvalue()
    assert text.count('\r') == 3 and text.count('\n') == 2 and text.endswith('done\n')
    quiet = io.StringIO()
    StderrProgress(0, quiet)('round', 1, 2)
    StderrProgress(0, quiet).status('loading')
    assert quiet.getvalue() == ''


def test_prefixed_relabels_and_none_reports_nothing():
    calls = []
    hooks.report(hooks.prefixed(lambda *a: calls.append(a), 'stage 2 '), 'heads', 1, 2)
    hooks.report(None, 'heads', 1, 2)
    assert hooks.prefixed(None, 'x') is None
    assert calls == [('stage 2 heads', 1, 2, None)]


def test_stage_two_heads_report_their_steps():
    calls = []
    features = np.eye(4, dtype=np.float32)
    train_heads(features, np.array([0, 1, 0, 1]), [np.array([0, 1]), np.array([2, 3])], 2, steps=120,
                progress=lambda *a: calls.append(a[:3]))
    assert calls == [('heads', 0, 120), ('heads', 50, 120), ('heads', 100, 120), ('heads', 120, 120)]


def test_progress_restarts_its_clock_when_a_label_starts_again():
    """FedAvg reports round 0 before and after TFF starts: the ETA counts from the second."""
    stream, clock = io.StringIO(), _Clock()
    bar = StderrProgress(2, stream, clock)
    bar('round', 0, 3)
    clock.now = 50.0
    bar('round', 0, 3)
    clock.now = 60.0
    bar('round', 1, 3)
    assert stream.getvalue().splitlines()[-1].split(' - ')[1:] == ['0:10', 'ETA 0:20']


def test_only_files_of_this_run_or_the_resumed_one_are_resumable(tmp_path):
    path = tmp_path / 'history.json'
    assert not report.resumable(str(path), resume=True, since=0.0)
    path.write_text('[]')
    os.utime(path, (1000.0, 1000.0))
    assert report.resumable(str(path), resume=False, since=999.0)
    assert not report.resumable(str(path), resume=False, since=1001.0)  # an earlier run's file
    assert report.resumable(str(path), resume=True, since=1001.0)
