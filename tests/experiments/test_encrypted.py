"""`--encrypted-train` mode functions, called directly with a parser of the flags they read."""

import argparse
import json
import os

import numpy as np
import pytest

from tfpriv.experiments import encrypted


def parser():
    p = argparse.ArgumentParser()
    p.add_argument('--dataset', choices=('mnist', 'credit'), default='mnist')
    p.add_argument('--model', choices=('mlp', 'cnn', 'cnn_large'), default='mlp')
    p.add_argument('--activation', choices=('relu', 'tanh'), default='relu')
    p.add_argument('--learning-rate', dest='learning_rate', type=float, default=0.1)
    p.add_argument('--epochs', type=int, default=15)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--num-train', type=int, default=None)
    p.add_argument('--num-test', type=int, default=None)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=None)
    p.add_argument('--images', default='images')
    encrypted.add_arguments(p.add_argument_group('encrypted-train'))
    return p


def parse(*argv):
    return parser().parse_args(list(argv))


def test_defaults_validate():
    assert encrypted.validate(parse('--dataset', 'credit')) == []
    args = parse('--dataset', 'mnist', '--num-train', '500', '--parties', '4', '--loss', 'mse')
    assert encrypted.validate(args) == []


@pytest.mark.parametrize('argv,message', [
    (('--parties', '1'), '--parties must be in [2, 16], got 1'),
    (('--model', 'cnn'), '--model mlp or --logistic-regression'),
    (('--activation', 'tanh'), '--activation relu'),
    (('--precision', '25'), '--precision must be in [8, 24]'),
    (('--dataset', 'credit', '--owners', '9999'), '--owners must be at most 522'),
    (('--dataset', 'credit', '--owner-split', 'columns', '--owners', '43'),
     '--owners must be at most 42 (the number of columns)'),
    (('--owners', '0'), '--owners must be >= 1'),
])
def test_bad_flags_are_named(argv, message):
    errors = encrypted.validate(parse(*argv))
    assert any(message in e for e in errors), errors


def test_unknown_loss_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as error:
        parse('--loss', 'nll')
    assert error.value.code == 2
    assert "invalid choice: 'nll'" in capsys.readouterr().err


def test_run_on_a_credit_subset(tmp_path):
    calls = []
    args = parse('--dataset', 'credit', '--num-train', '64', '--num-test', '32', '--epochs', '2',
                 '--batch-size', '16', '--parties', '2', '--smpc-seeded',
                 '--out', str(tmp_path / 'runs'), '--images', str(tmp_path / 'images'))
    run = encrypted.run(args, lambda *report: calls.append(report[:3]))
    summary = run.metrics['summary']
    assert os.path.exists(summary['figure'])
    # same start and batches: accuracy within two test examples of plaintext (see
    # tests/crypto/smpc/test_training.py for the weight-level tolerance)
    assert abs(summary['accuracy_gap_points']) <= 100 * 2 / 32
    assert summary['bytes_per_example'] > 0 and summary['rounds_per_epoch'] > 0
    weights = np.load(summary['weights'])
    assert weights['kernel0'].shape == (42, 64) and weights['kernel2'].shape == (64, 2)
    run_dir = tmp_path / 'runs' / 'encrypted_credit_mlp_2p'
    metrics = json.loads((run_dir / 'metrics.json').read_text())
    assert len(metrics['encrypted']['val_accuracy']) == 2
    assert ('encrypted epoch 2/2', 4, 4) in calls and ('plaintext epoch 1/2', 1, 4) in calls
    assert dict(run.accuracy)['encrypted'] == summary['encrypted_test_accuracy'] and not run.epsilons


def test_keep_shared_reveals_nothing(tmp_path):
    args = parse('--dataset', 'credit', '--num-train', '32', '--num-test', '16', '--epochs', '1',
                 '--batch-size', '16', '--logistic-regression', '--keep-shared', '--smpc-seeded',
                 '--out', str(tmp_path / 'runs'), '--images', str(tmp_path / 'images'))
    summary = encrypted.run(args).metrics['summary']
    assert summary['weights'] is None
    assert not (tmp_path / 'runs' / 'encrypted_credit_logreg_3p' / 'weights.npz').exists()
