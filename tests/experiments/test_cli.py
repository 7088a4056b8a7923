"""train.py end to end on a real MNIST subset, flag validation, budget and resume."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tfpriv.dp import accounting
from tfpriv.experiments import report

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ['--num-train', '2000', '--num-test', '1000', '--batch-size', '50', '--lr', '0.5',
         '--verbose', '0']
Q, STEPS_PER_EPOCH = 50 / 2000, 40
# The seed's settings (README "Differential privacy"); the tests below were written for them.
SEED = ['--model', 'mlp', '--batch-size', '32', '--lr', '0.1', '--noise-multiplier', '0.9',
        '--l2-norm-clip', '0.9', '--epochs', '15', '--lr-schedule', 'constant', '--momentum', '0']


def run_cli(*args, tmp_path, check=True, seed_settings=True):
    """`python train.py --out <tmp>/runs --images <tmp>/images [SEED] args` in a subprocess."""
    cmd = [sys.executable, os.path.join(ROOT, 'train.py'), *_argv(args, tmp_path, seed_settings)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _argv(args, tmp_path, seed_settings=True):
    return ['--out', str(tmp_path / 'runs'), '--images', str(tmp_path / 'images'),
            *(SEED if seed_settings else []), *args]


@pytest.fixture
def train_py(capsys):
    """`run_cli` in this process: `cli.main(argv)`, what train.py runs, without the 6-8 s of
    a fresh interpreter importing TensorFlow. For the tests of what a run computes and
    writes; signals, progress bars and the real entry point keep their subprocess tests."""
    from tfpriv.experiments import cli  # pylint: disable=import-outside-toplevel

    def run(*args, tmp_path, check=True, seed_settings=True):
        try:
            returncode = cli.main(_argv(args, tmp_path, seed_settings))
        except SystemExit as stopped:
            returncode = stopped.code
        out, err = capsys.readouterr()
        if check:
            assert returncode == 0, err[-3000:]
        return subprocess.CompletedProcess(['train.py', *args], returncode, out, err)
    return run


def metrics(tmp_path, tag):
    with open(tmp_path / 'runs' / tag / 'metrics.json') as f:
        return json.load(f)


@pytest.mark.parametrize('flags,message', [
    (['--lr', '0'], '--learning-rate must be > 0'),
    (['--epochs', '0'], '--epochs must be >= 1'),
    (['--batch-size', '0'], '--batch-size must be in'),
    (['--batch-size', '70000'], '--batch-size must be in'),
    (['--l2_norm_clip', '-1'], '--l2-norm-clip must be > 0'),
    (['--noise_mult', '-0.5'], '--noise-multiplier must be >= 0'),
    (['--delta', '1.5'], '--delta must be in'),
    (['--target-epsilon', '0'], '--target-epsilon must be > 0'),
    (['--delta', '1e-4', '--num-train', '10000'], r'--delta must be < 1/n = 0.0001'),
    (['--sampling', 'uniform'], "invalid choice: 'uniform'"),
    (['--dataset', 'cifar'], "invalid choice: 'cifar'"),
    (['--model', 'rnn'], "invalid choice: 'rnn'"),
    (['--lr', 'fast'], "invalid float value"),
    (['--dataset', 'credit', '--batch-size', '600'], r'--batch-size must be in \[1, 522\]'),
    (['--audit', '--federated', '--no-dp'], '--audit audits the DP-SGD / plain run'),
    (['--audit', '--audit-canaries', '1'], '--audit-canaries must be >= 2'),
    (['--audit', '--num-train', '30', '--audit-canaries', '40', '--batch-size', '10'],
     '--audit needs more training examples'),
    (['--encrypted-train', '--parties', '1'], '--parties must be in'),
    (['--momentum', '1'], r'--momentum must be in \[0, 1\), got 1.0'),
    (['--momentum', 'nan'], r'--momentum must be in \[0, 1\)'),
    (['--momentum', '0.5', '--optimizer', 'adam'], '--momentum needs --optimizer sgd'),
    (['--ema-decay', '1'], r'--ema-decay must be in \[0, 1\)'),
    (['--lr-schedule', 'step'], "invalid choice: 'step'"),
    (['--model', 'scatternet_linear', '--dataset', 'credit'], 'needs --dataset mnist'),
    (['--model', 'scatternet_cnn', '--federated'], 'trains only in the DP-SGD / plain mode'),
    (['--model', 'scatternet_linear', '--audit'], 'trains only in the DP-SGD / plain mode'),
    (['--augmult', '0'], '--augmult must be >= 1'),
    (['--augmult', '4', '--clipping', 'fast'], 'only --clipping vectorized'),
    (['--augmult', '4', '--model', 'scatternet_linear'], '--augmult shifts MNIST images'),
])
def test_bad_flags_exit_2_with_message(tmp_path, flags, message, capsys, monkeypatch):
    """In process (`cli.main`, as train.py calls it; a subprocess each cost 1.3 s): argparse's
    exit 2 with the message, before any mode runs."""
    from tfpriv.experiments import cli  # pylint: disable=import-outside-toplevel
    monkeypatch.setattr(cli, '_run', lambda *args: pytest.fail(f'{flags} were accepted'))
    with pytest.raises(SystemExit) as stopped:
        cli.main(['--out', str(tmp_path / 'runs'), '--images', str(tmp_path / 'images'),
                  *SEED, *flags])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and 'Traceback' not in err
    assert re.search(message, err), err


@pytest.mark.parametrize('flags,message', [
    (['--lr', '0'], '--learning-rate must be > 0'), (['--model', 'rnn'], "invalid choice: 'rnn'")])
def test_bad_flags_on_the_command_line_are_one_line_exit_2(tmp_path, flags, message):
    proc = run_cli(*flags, tmp_path=tmp_path, check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert re.search(message, proc.stderr.strip().splitlines()[-1]), proc.stderr


def test_dp_run_writes_figure_and_metrics(train_py, tmp_path):
    proc = train_py('--epochs', '1', *SMALL, tmp_path=tmp_path)
    assert (tmp_path / 'images' / 'mlp_dp.png').stat().st_size > 10000
    m = metrics(tmp_path, 'mlp_dp')
    assert m['test_accuracy'] > 0.3  # 10 classes: chance is 0.1
    assert m['clipping'] == 'fast' and m['sampling'] == 'poisson'
    expected = accounting.dpsgd_epsilon(0.9, Q, STEPS_PER_EPOCH, 1e-4)
    assert m['epsilon'] == pytest.approx(expected) and m['history']['epsilon'] == [pytest.approx(expected)]
    assert f"{m['epsilon']:.3f} (RDP)" in proc.stdout and 'δ = 0.0001' in proc.stdout


def test_compare_draws_both(train_py, tmp_path):
    train_py('--compare', '--epochs', '1', '--model', 'cnn', *SMALL, tmp_path=tmp_path)
    assert (tmp_path / 'images' / 'cnn_compare.png').exists()
    assert 'epsilon' not in metrics(tmp_path, 'cnn_no-dp')
    assert metrics(tmp_path, 'cnn_dp')['clipping'] == 'fast'  # Conv2D registry, no Dropout under DP


def test_target_epsilon_is_met_not_exceeded(train_py, tmp_path):
    train_py('--target-epsilon', '1.0', '--epochs', '2', *SMALL, tmp_path=tmp_path)
    m = metrics(tmp_path, 'mlp_dp')
    assert 0.95 <= m['epsilon'] <= 1.0
    # two-sided: the reported σ meets ε ≤ 1 after the 2 epochs, and 1 % less noise would not
    # (the RDP accountant called directly with the run's q, steps and δ)
    sigma, steps = m['noise_multiplier'], 2 * STEPS_PER_EPOCH
    assert accounting.dpsgd_epsilon(sigma, Q, steps, 1e-4) <= 1.0 < \
        accounting.dpsgd_epsilon(0.99 * sigma, Q, steps, 1e-4)
    assert max(m['history']['epsilon']) <= 1.0


def test_credit_dataset_trains(train_py, tmp_path):
    train_py('--dataset', 'credit', '--no-dp', '--epochs', '5', '--batch-size', '32', '--verbose', '0',
            tmp_path=tmp_path)
    assert metrics(tmp_path, 'mlp_no-dp')['test_accuracy'] > 0.7


def test_resume_after_kill_continues_epochs_and_epsilon(train_py, tmp_path):
    args = ['--epochs', '3', *SMALL]
    cmd = [sys.executable, os.path.join(ROOT, 'train.py'), '--out', str(tmp_path / 'runs'),
           '--images', str(tmp_path / 'images'), *SEED, *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = tmp_path / 'runs' / 'mlp_dp' / 'history.json'
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and len(json.loads(history.read_text())) >= 1:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(json.loads(history.read_text()))
    assert 1 <= done_before < 3, 'the run was expected to be killed mid-way'
    train_py('--resume', *args, tmp_path=tmp_path)
    m = metrics(tmp_path, 'mlp_dp')
    assert m['epochs_completed'] == 3
    assert m['history']['epsilon'] == pytest.approx(
        [accounting.dpsgd_epsilon(0.9, Q, STEPS_PER_EPOCH * e, 1e-4) for e in (1, 2, 3)])
    assert m['train_seconds_this_session'] > 0


def test_a_resumed_run_is_reseeded_so_it_does_not_replay_its_first_epochs(train_py, tmp_path,
                                                                         monkeypatch):
    """Under one global seed a fresh process replays TensorFlow's random streams: the same
    Poisson batches (shown here) and the same DP noise. A run resumed after e epochs is
    therefore seeded with `run_seed(seed, e)`, not `seed`, so the epochs it adds draw fresh
    batches and noise. The run is stopped (Ctrl-C) right after its first epoch was saved."""
    import numpy as np
    import tensorflow as tf
    from tfpriv.dp import sampling
    from tfpriv.experiments import dpsgd

    def first_epoch(seed):
        tf.keras.utils.set_random_seed(seed)
        data = sampling.poisson_batches(np.arange(200.0)[:, None], np.zeros(200), 0.1, 3)
        return [batch[0].numpy().ravel().tolist() for batch in data]

    assert first_epoch(0) == first_epoch(0) != first_epoch(dpsgd.run_seed(0, 1))
    assert len({dpsgd.run_seed(0, e) for e in range(50)} | {dpsgd.run_seed(1, 1)}) == 51
    seeds, set_seed = [], tf.keras.utils.set_random_seed
    monkeypatch.setattr(tf.keras.utils, 'set_random_seed',
                        lambda seed: (seeds.append(seed), set_seed(seed)) and None)
    save = dpsgd._HistoryLog.on_epoch_end  # pylint: disable=protected-access

    def stop_after_saving(self, epoch, logs=None):
        save(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(dpsgd._HistoryLog, 'on_epoch_end', stop_after_saving)  # pylint: disable=protected-access
    assert train_py('--epochs', '2', *SMALL, tmp_path=tmp_path, check=False).returncode == 130
    monkeypatch.setattr(dpsgd._HistoryLog, 'on_epoch_end', save)  # pylint: disable=protected-access
    train_py('--resume', '--epochs', '2', *SMALL, tmp_path=tmp_path)
    assert seeds == [0, dpsgd.run_seed(0, 1)] and seeds[1] != 0
    m = metrics(tmp_path, 'mlp_dp')
    assert m['epochs_completed'] == 2
    assert m['history']['epsilon'] == pytest.approx(
        [accounting.dpsgd_epsilon(0.9, Q, STEPS_PER_EPOCH * e, 1e-4) for e in (1, 2)])


def test_resume_with_other_settings_is_refused(train_py, tmp_path):
    train_py('--epochs', '1', *SMALL, tmp_path=tmp_path)
    proc = train_py('--resume', '--epochs', '1', *SMALL, '--lr', '0.2', tmp_path=tmp_path, check=False)
    assert proc.returncode == 2 and 'holds a run with other settings' in proc.stderr


def test_encrypted_eval_matches_plaintext(train_py, tmp_path):
    proc = train_py('--encrypted-eval', '--epochs', '1', *SMALL, '--num-test', '200',
                   tmp_path=tmp_path)
    assert 'under SMPC (3 parties, 200 images)' in proc.stdout
    assert ' 0 predictions differ from plaintext' in proc.stdout, proc.stdout


def test_old_and_new_flag_spellings_parse_alike():
    from tfpriv.experiments.cli import build_parser
    parser = build_parser()
    new = parser.parse_args(['--noise-multiplier', '1.3', '--l2-norm-clip', '0.7',
                             '--learning-rate', '0.05', '--optimizer', 'adam'])
    old = parser.parse_args(['--noise_mult', '1.3', '--l2_norm_clip', '0.7', '--lr', '0.05',
                             '--opt', 'adam'])
    for name in ('noise_multiplier', 'l2_norm_clip', 'learning_rate', 'optimizer'):
        assert getattr(new, name) == getattr(old, name) != getattr(parser.parse_args([]), name)


def test_help_groups_the_flags_of_each_mode():
    from tfpriv.experiments.cli import build_parser
    text = build_parser().format_help()
    sections = re.split(r'\n(?=\S[^\n]*:\n)', text)
    titled = {section.split(':', 1)[0]: section for section in sections}
    assert '--model' in titled['common'] and '--noise-multiplier' not in titled['common']
    for flag in ('--noise-multiplier', '--l2-norm-clip', '--target-epsilon', '--clipping',
                 '--sampling {poisson,shuffle}'):
        assert flag in titled['DP-SGD'], flag
    assert '--clients' in titled['federated'] and '--teachers' in titled['pate']


def test_shuffle_sampling_reports_its_own_epsilon(train_py, tmp_path):
    proc = train_py('--epochs', '1', '--sampling', 'shuffle', *SMALL, tmp_path=tmp_path)
    m = metrics(tmp_path, 'mlp_dp')
    assert m['sampling'] == 'shuffle' and m['epsilon_pld'] is None
    assert m['epsilon'] == pytest.approx(accounting.dpsgd_epsilon(
        0.9, Q, STEPS_PER_EPOCH, 1e-4, sampling='shuffle', num_examples=2000))
    assert m['epsilon'] > accounting.dpsgd_epsilon(0.9, Q, STEPS_PER_EPOCH, 1e-4)
    assert 'shuffle sampling' in proc.stdout


def test_resume_with_target_epsilon_never_under_reports(train_py, tmp_path):
    """Issue #14 item 4: 1 epoch at σ(ε=2, 1 epoch), then --resume --epochs 2 recalibrated σ for
    2 epochs and reported 2.0, below the composition of the two σ's. Now epochs are part of
    the resume key: the mixed run is refused, and a resumed run reports the composition of
    the σ it used, which is what the accountant gives for its own epochs."""
    args = ['--target-epsilon', '2.0', *SMALL]
    train_py('--epochs', '1', *args, tmp_path=tmp_path)
    first = metrics(tmp_path, 'mlp_dp')
    proc = train_py('--resume', '--epochs', '2', *args, tmp_path=tmp_path, check=False)
    assert proc.returncode == 2 and "'epochs': (1, 2)" in proc.stderr, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith('train.py: error: --resume')
    assert first['epsilon'] >= accounting.dpsgd_epsilon(
        first['noise_multiplier'], Q, STEPS_PER_EPOCH, 1e-4) - 1e-12
    assert first['epsilon'] <= 2.0


def test_audit_reports_attacks_and_a_lower_bound_below_the_upper_bound(train_py, tmp_path):
    """`--audit` retrains the configuration on members + canaries and attacks it: a DP run's
    canary lower bound must not exceed the ε the run reports (the audit run has fewer
    examples, hence a larger q and an even larger upper bound)."""
    proc = train_py('--epochs', '1', '--num-train', '400', '--num-test', '200', '--batch-size',
                   '50', '--verbose', '0', '--audit', '--audit-canaries', '40', tmp_path=tmp_path)
    upper = float(re.search(r'([0-9.]+) \(RDP\)', proc.stdout).group(1))
    line = re.search(r'audit +MIA AUC ([0-9.]+) .*eps >= ([0-9.]+) at 95% confidence', proc.stdout)
    assert line, proc.stdout
    auc, lower = float(line.group(1)), float(line.group(2))
    assert 0.0 <= lower <= upper
    assert 0.0 <= auc <= 1.0


def test_encrypted_train_mode_dispatches_from_the_command_line(train_py, tmp_path):
    """`--encrypted-train` (a hyphenated mode flag) reaches its mode's run and prints its JSON."""
    proc = train_py('--encrypted-train', '--dataset', 'credit', '--num-train', '64', '--num-test',
                   '32', '--epochs', '1', '--batch-size', '16', '--parties', '2', '--smpc-seeded',
                   '--json', tmp_path=tmp_path)
    summary = json.loads(proc.stdout)['summary']
    assert abs(summary['accuracy_gap_points']) <= 100 * 2 / 32


# ---- issue #21: every mode's summary, --json, progress on stderr, Ctrl-C -------------------

PROGRESS = re.compile(r'\d+/\d+ \[[=>.]+\]')  # a bar of ours or of Keras
TINY = {  # mode: (flags, run directory under --out, title start, key of the JSON in metrics.json)
    'dpsgd': (['--epochs', '1', '--num-train', '500', '--num-test', '200', '--batch-size', '50'],
              'mlp_dp', 'DP-SGD', None),
    'federated': (['--federated', '--num-train', '200', '--num-test', '100', '--clients', '4',
                   '--rounds', '1', '--client-fraction', '0.5'], 'fedavg_mnist_mlp_iid_dp', 'FedAvg', 'iid'),
    'pate': (['--pate', '--num-train', '200', '--teachers', '2', '--teacher-epochs', '1', '--queries', '10',
              '--student-steps', '20', '--student-rounds', '0', '--student-ensemble', '1',
              '--threshold', '1'], 'pate', 'PATE', None),
    'encrypted': (['--encrypted-train', '--dataset', 'credit', '--num-train', '64', '--num-test', '32',
                   '--epochs', '1', '--batch-size', '16', '--parties', '2'],
                  'encrypted_credit_mlp_2p', 'Encrypted training', None),
}


def assert_ends_with_summary(stdout, title):
    lines = stdout.rstrip('\n').splitlines()
    start = max(i for i, line in enumerate(lines) if not line.startswith('  '))
    assert lines[start].startswith(title), stdout
    labels = [line.split()[0] for line in lines[start + 1:]]
    assert labels[:2] == ['accuracy', 'ε'] and 'time' in labels and 'metrics' in labels, stdout
    assert all(line.startswith('  ') for line in lines[start + 1:])


@pytest.mark.slow
@pytest.mark.parametrize('mode', TINY)
def test_each_mode_ends_with_its_summary_or_json_and_draws_progress_on_stderr(train_py, tmp_path,
                                                                             mode):
    """Quiet run (--verbose 0, in this process): stdout is the summary, stderr has no progress
    bar. Second run (train.py itself, --verbose 1 --json, --overwrite for the modes that refuse
    an earlier run): stdout is the JSON of metrics.json alone, stderr has the progress bars."""
    flags, run_dir, title, key = TINY[mode]
    flags = flags + ['--pate-cache', str(tmp_path / 'cache')] * (mode == 'pate')
    quiet = train_py(*flags, '--verbose', '0', tmp_path=tmp_path)
    assert_ends_with_summary(quiet.stdout, title)
    assert not PROGRESS.search(quiet.stderr) and 'Epoch' not in quiet.stderr, quiet.stderr
    assert str(tmp_path / 'runs' / run_dir / 'metrics.json') in quiet.stdout
    loud = run_cli(*flags, '--verbose', '1', '--json', '--overwrite', tmp_path=tmp_path)
    printed = json.loads(loud.stdout)
    saved = metrics(tmp_path, run_dir)
    part = printed['runs'][key] if key else printed
    assert set(saved) <= set(part)
    assert all(part[k] == saved[k] for k in saved if isinstance(saved[k], (int, str)))
    assert PROGRESS.search(loud.stderr), loud.stderr[-2000:]
    assert loud.stderr.startswith('train.py'), loud.stderr[:500]  # first words within seconds


def test_pate_refuses_to_replace_an_earlier_run_without_overwrite(tmp_path):
    (tmp_path / 'runs' / 'pate').mkdir(parents=True)
    (tmp_path / 'runs' / 'pate' / 'metrics.json').write_text('{}')
    proc = run_cli('--pate', tmp_path=tmp_path, check=False)
    assert proc.returncode == 2 and '--overwrite' in proc.stderr and 'Traceback' not in proc.stderr


def _interrupt_when(cmd, ready, timeout=600):
    """Starts cmd, reads its stderr until `ready(stderr so far)`, sends SIGINT; (rc, stdout, stderr, workers)."""
    import psutil  # pylint: disable=import-outside-toplevel
    import select  # pylint: disable=import-outside-toplevel
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err, deadline, workers = b'', time.monotonic() + timeout, []
    try:
        while not ready(err.decode(errors='replace')):
            assert proc.poll() is None and time.monotonic() < deadline, err.decode()[-3000:]
            if select.select([proc.stderr], [], [], 1.0)[0]:
                err += os.read(proc.stderr.fileno(), 65536)
        workers = [c for c in psutil.Process(proc.pid).children(recursive=True)
                   if c.name() == 'worker_binary']
        os.kill(proc.pid, signal.SIGINT)
        out, rest = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out.decode(), (err + rest).decode(errors='replace'), workers


INTERRUPTED = {  # mode: (flags, what to wait for on stderr or on disk, what the last line says)
    'dpsgd': (['--model', 'mlp', '--epochs', '30', '--num-train', '500', '--num-test', '100', '--batch-size', '50'],
              lambda err, runs: 'Epoch 2/30' in err, 'mlp_dp/backup (epoch 1/30): continue with'),
    'federated': (['--federated', '--num-train', '200', '--num-test', '100', '--clients', '4',
                   '--client-fraction', '0.5', '--rounds', '50'],
                  lambda err, runs: (runs / 'fedavg_mnist_mlp_iid_dp' / 'server_state.npz').exists(),
                  '/50): continue with'),
    'pate': (['--pate', '--num-train', '2000', '--teachers', '20', '--teacher-epochs', '50',
              '--threshold', '10'],
             lambda err, runs: 'teachers 0/20' in err, 'nothing was saved'),
    'encrypted': (['--encrypted-train', '--dataset', 'credit', '--num-train', '64', '--num-test', '32',
                   '--epochs', '50', '--batch-size', '16', '--parties', '2'],
                  lambda err, runs: 'encrypted epoch 1/50' in err, 'nothing was saved'),
}


@pytest.mark.slow
@pytest.mark.parametrize('mode', INTERRUPTED)
def test_ctrl_c_stops_each_mode_with_one_line_and_status_130(tmp_path, mode):
    flags, ready, saying = INTERRUPTED[mode]
    runs = tmp_path / 'runs'
    cmd = [sys.executable, os.path.join(ROOT, 'train.py'), '--out', str(runs), '--images',
           str(tmp_path / 'images'), '--pate-cache', str(tmp_path / 'cache'), *flags]
    rc, out, err, workers = _interrupt_when(cmd, lambda text: ready(text, runs))
    assert rc == 130, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith('train.py: interrupted; ') and saying in last, err[-3000:]
    assert ('--resume' in last) == ('continue with' in saying)
    assert 'Traceback' not in err and out == ''
    assert all(not w.is_running() or w.status() == 'zombie' for w in workers)


def test_defaults_are_the_dpsgd_ones_and_the_seeds_in_other_modes():
    from tfpriv.experiments.cli import build_parser, resolve_defaults
    parser = build_parser()
    dp = resolve_defaults(parser.parse_args([]))
    assert (dp.model, dp.batch_size, dp.learning_rate, dp.epochs, dp.noise_multiplier,
            dp.l2_norm_clip, dp.lr_schedule, dp.momentum, dp.ema_decay) == (
                'scatternet_linear', 2048, 4.0, 10, 2.6, 0.1, 'cosine', 0.9, 0.0)
    for mode in ('--federated', '--pate', '--encrypted-train'):
        seed = resolve_defaults(parser.parse_args([mode]))
        assert (seed.model, seed.batch_size, seed.learning_rate, seed.epochs,
                seed.noise_multiplier, seed.l2_norm_clip, seed.lr_schedule, seed.momentum) == (
                    'mlp', 32, 0.1, 15, 0.9, 0.9, 'constant', 0.0), mode
    kept = resolve_defaults(parser.parse_args(['--batch-size', '512', '--momentum', '0']))
    assert kept.batch_size == 512 and kept.momentum == 0.0 and kept.epochs == 10


def test_default_run_spends_epsilon_about_one():
    """The defaults' privacy: σ 2.6, q = 2048 / 60,000, 10 epochs of ceil(60,000 / 2048) steps,
    δ = 1e-5 (default_delta(60,000)), computed here with dp_accounting directly."""
    import dp_accounting
    steps = 10 * -(-60000 // 2048)
    event = dp_accounting.SelfComposedDpEvent(dp_accounting.PoissonSampledDpEvent(
        2048 / 60000, dp_accounting.GaussianDpEvent(2.6)), steps)
    rdp = dp_accounting.rdp.RdpAccountant().compose(event).get_epsilon(1e-5)
    assert accounting.default_delta(60000) == 1e-5
    assert 0.95 <= rdp <= 1.0
    assert accounting.dpsgd_epsilon(2.6, 2048 / 60000, steps, 1e-5) == pytest.approx(rdp, rel=1e-6)


def test_scatternet_run_with_schedule_and_ema(train_py, tmp_path, monkeypatch):
    monkeypatch.setenv('TFPRIV_CACHE', str(tmp_path / 'cache'))
    proc = train_py('--model', 'scatternet_linear', '--num-train', '1000', '--num-test', '500',
                   '--batch-size', '100', '--epochs', '2', '--ema-decay', '0.9', '--verbose', '0',
                   tmp_path=tmp_path, seed_settings=False)
    m = metrics(tmp_path, 'scatternet_linear_dp')
    assert m['clipping'] == 'fast' and m['noise_multiplier'] == 2.6
    assert m['config']['lr_schedule'] == 'cosine' and m['config']['ema_decay'] == 0.9
    assert m['test_accuracy'] > 0.5  # chance is 0.1
    assert m['epsilon'] == pytest.approx(accounting.dpsgd_epsilon(2.6, 0.1, 20, 1e-4))
    assert len(os.listdir(tmp_path / 'cache')) == 2  # train and test features, cached
    assert 'SCATTERNET_LINEAR on mnist' in proc.stdout  # the summary's title


@pytest.mark.parametrize('flag, kept', [((), True), (('--default-allocator',), False)])
def test_train_py_keeps_freed_memory_unless_told_not_to(monkeypatch, capsys, tmp_path, flag, kept):
    from tfpriv.experiments import cli  # pylint: disable=import-outside-toplevel
    calls = []
    monkeypatch.setattr(cli.allocator, 'keep_freed_memory', lambda: calls.append('kept'))
    monkeypatch.setattr(cli, '_run', lambda *_: report.RunReport('t', [], [], [], {}))
    assert cli.main(_argv(flag, tmp_path)) == 0
    assert calls == ['kept'] * kept
    capsys.readouterr()
