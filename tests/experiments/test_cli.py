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

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ['--num-train', '2000', '--num-test', '1000', '--batch-size', '50', '--lr', '0.5',
         '--verbose', '0']
Q, STEPS_PER_EPOCH = 50 / 2000, 40


def run_cli(*args, tmp_path, check=True):
    cmd = [sys.executable, os.path.join(ROOT, 'train.py'), '--out', str(tmp_path / 'runs'),
           '--images', str(tmp_path / 'images'), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


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
    (['--dataset', 'cifar'], "invalid choice: 'cifar'"),
    (['--model', 'rnn'], "invalid choice: 'rnn'"),
    (['--lr', 'fast'], "invalid float value"),
    (['--dataset', 'credit', '--batch-size', '600'], r'--batch-size must be in \[1, 522\]'),
])
def test_bad_flags_exit_2_with_message(tmp_path, flags, message):
    proc = run_cli(*flags, tmp_path=tmp_path, check=False)
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    assert re.search(message, proc.stderr), proc.stderr


def test_dp_run_writes_figure_and_metrics(tmp_path):
    proc = run_cli('--epochs', '1', *SMALL, tmp_path=tmp_path)
    assert (tmp_path / 'images' / 'mlp_dp.png').stat().st_size > 10000
    m = metrics(tmp_path, 'mlp_dp')
    assert m['test_accuracy'] > 0.3  # 10 classes: chance is 0.1
    assert m['clipping'] == 'fast'
    expected = accounting.dpsgd_epsilon(0.9, Q, STEPS_PER_EPOCH, 1e-4)
    assert m['epsilon'] == pytest.approx(expected) and m['history']['epsilon'] == [pytest.approx(expected)]
    assert f"ε = {m['epsilon']:.3f}" in proc.stdout and 'δ = 0.0001' in proc.stdout


def test_compare_draws_both(tmp_path):
    run_cli('--compare', '--epochs', '1', '--model', 'cnn', *SMALL, tmp_path=tmp_path)
    assert (tmp_path / 'images' / 'cnn_compare.png').exists()
    assert 'epsilon' not in metrics(tmp_path, 'cnn_no-dp')
    assert metrics(tmp_path, 'cnn_dp')['clipping'] == 'fast'  # Conv2D registry, no Dropout under DP


def test_target_epsilon_is_met_not_exceeded(tmp_path):
    run_cli('--target-epsilon', '1.0', '--epochs', '2', *SMALL, tmp_path=tmp_path)
    m = metrics(tmp_path, 'mlp_dp')
    assert 0.95 <= m['epsilon'] <= 1.0
    assert m['noise_multiplier'] > 0.9
    assert max(m['history']['epsilon']) <= 1.0


def test_credit_dataset_trains(tmp_path):
    run_cli('--dataset', 'credit', '--no-dp', '--epochs', '5', '--batch-size', '32', '--verbose', '0',
            tmp_path=tmp_path)
    assert metrics(tmp_path, 'mlp_no-dp')['test_accuracy'] > 0.7


def test_resume_after_kill_continues_epochs_and_epsilon(tmp_path):
    args = ['--epochs', '3', *SMALL]
    cmd = [sys.executable, os.path.join(ROOT, 'train.py'), '--out', str(tmp_path / 'runs'),
           '--images', str(tmp_path / 'images'), *args]
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
    run_cli('--resume', *args, tmp_path=tmp_path)
    m = metrics(tmp_path, 'mlp_dp')
    assert m['epochs_completed'] == 3
    assert m['history']['epsilon'] == pytest.approx(
        [accounting.dpsgd_epsilon(0.9, Q, STEPS_PER_EPOCH * e, 1e-4) for e in (1, 2, 3)])
    assert m['train_seconds_this_session'] > 0


def test_resume_with_other_settings_is_refused(tmp_path):
    run_cli('--epochs', '1', *SMALL, tmp_path=tmp_path)
    proc = run_cli('--resume', '--epochs', '1', *SMALL, '--lr', '0.2', tmp_path=tmp_path, check=False)
    assert proc.returncode == 2 and 'holds a run with other settings' in proc.stderr


def test_encrypted_eval_matches_plaintext(tmp_path):
    proc = run_cli('--encrypted-eval', '--epochs', '1', *SMALL, '--num-test', '200',
                   tmp_path=tmp_path)
    assert 'encrypted evaluation (3 parties, 200 images)' in proc.stdout
    assert ' 0 disagreeing predictions' in proc.stdout, proc.stdout
