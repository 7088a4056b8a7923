"""`train.py --federated`: bad flags exit 2 before TensorFlow starts; kill -9 then --resume."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tfpriv.experiments.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize('flags, message', [
    (['--clients', '70000'], 'clients must be in'),
    (['--client-fraction', '0'], 'client-fraction must be in (0, 1]'),
    (['--client-fraction', '1.5'], 'client-fraction must be in (0, 1]'),
    (['--partition', 'iid,zipf'], 'unknown --partition zipf'),
    (['--rounds', '0'], 'rounds must be >= 1'),
    (['--secure-agg', 'shamir', '--dp-mode', 'central'], 'cannot be combined with --secure-agg'),
    (['--no-dp', '--dp-mode', 'distributed'], '--dp-mode needs --dp'),
    (['--dp-mode', 'distributed', '--client-sampling', 'poisson'], 'needs --client-sampling fixed'),
    (['--secure-agg', 'rlwe', '--adaptive-clipping'], 'not supported with --dp-mode distributed'),
    (['--dp-mode', 'distributed', '--dp-bits', '40'], '--dp-bits must be in [2, 24]'),
    (['--client-sampling', 'uniform'], "invalid choice: 'uniform'"),
    (['--no-dp', '--adaptive-clipping'], 'adaptive-clipping needs --dp'),
    (['--workers', 'localhost'], 'host:port'),
    (['--model-ema', '1'], 'model-ema must be in [0, 1)'),
    (['--no-dp', '--client-lr-decay', '0'], 'learning-rate-decay must be in (0, 1]'),
    (['--client-lr-decay', '0.9'], 'only supported for plain FedAvg'),  # --dp is the default
    (['--dataset', 'credit', '--partition', 'per-example', '--clients', '9'], 'one client per'),
    (['--epochs', '3'], '--epochs is not used with --federated'),
    (['--clipping', 'fast'], '--clipping is not used with --federated'),
    (['--resume', '--overwrite'], '--resume and --overwrite exclude each other'),
])
def test_bad_federated_flags_exit_2(flags, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(['--federated'] + flags)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def _checkpoint_of(out, flags, fingerprint_flags=None):
    """Writes a small checkpoint where `train.py --federated <flags>` keeps its run; returns its dir.

    Its fingerprint is that of `fingerprint_flags` (default: `flags`), as `train.py` records it.
    """
    from tfpriv.experiments.cli import build_parser, resolve_defaults
    from tfpriv.experiments.federated import config_from_args
    from tfpriv.federated import checkpoint, fedavg
    args = resolve_defaults(build_parser().parse_args(['--federated'] + (fingerprint_flags or flags)))
    config = config_from_args(args, 'iid')
    directory = fedavg.default_out(config, 'mnist', str(out))
    checkpoint.save(directory, [np.zeros(3, np.float32)], 1, {'round': [1]}, config.fingerprint())
    return directory


@pytest.mark.parametrize('case, message', [
    ('exists', 'exists: pass --resume to continue that run or --overwrite to replace it'),
    ('missing', '--resume: there is no checkpoint'),
    ('truncated', 'is truncated or not a checkpoint'),
    ('other settings', 'was written by a run with other settings'),
])
def test_checkpoint_problems_exit_2_with_one_line(tmp_path, capsys, case, message):
    """Refused in validation, before any training: overwriting, or resuming what cannot be resumed."""
    flags = ['--num-train', '1200', '--clients', '6', '--out', str(tmp_path)]
    if case != 'missing':
        directory = _checkpoint_of(tmp_path, flags, flags + ['--learning-rate', '0.5']
                                   if case == 'other settings' else None)
    if case == 'truncated':
        path = os.path.join(directory, 'server_state.npz')
        with open(path, 'r+b') as f:
            f.truncate(os.path.getsize(path) - 40)
    with pytest.raises(SystemExit) as info:
        main(['--federated'] + flags + ([] if case == 'exists' else ['--resume']))
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err
    assert err.strip().splitlines()[-1].startswith('train.py: error:')


def test_overwrite_or_resume_accepts_an_existing_checkpoint(tmp_path):
    from tfpriv.experiments.cli import build_parser, resolve_defaults
    from tfpriv.experiments.federated import validate
    flags = ['--federated', '--num-train', '1200', '--clients', '6', '--out', str(tmp_path)]
    _checkpoint_of(tmp_path, flags[1:])
    for extra in (['--overwrite'], ['--resume']):
        assert validate(resolve_defaults(build_parser().parse_args(flags + extra))) == []


def test_resume_problems_are_found_before_tensorflow_starts(tmp_path):
    """`--resume` without a checkpoint: exit 2 and one line, without importing TensorFlow."""
    code = ('import sys\n'
            'from tfpriv.experiments.cli import main\n'
            'try:\n'
            f'    main(["--federated", "--resume", "--out", {str(tmp_path)!r}])\n'
            'except SystemExit as error:\n'
            '    print(error.code, "tensorflow" in sys.modules)\n')
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.split() == ['2', 'False'], result.stderr[-2000:]
    assert 'there is no checkpoint' in result.stderr


def test_kill_9_then_resume_keeps_rounds_and_epsilon(tmp_path, capsys):
    out, images = tmp_path / 'runs', tmp_path / 'images'
    flags = ['--federated', '--dp', '--noise_mult', '1.0', '--num-train', '1200', '--num-test',
             '300', '--clients', '6', '--client-fraction', '0.5', '--batch-size', '20',
             '--out', str(out), '--images', str(images), '--verbose', '0']
    checkpoint = out / 'fedavg_mnist_mlp_iid_dp' / 'server_state.npz'
    cmd = [sys.executable, os.path.join(ROOT, 'train.py')]
    proc = subprocess.Popen(cmd + flags + ['--rounds', '50'], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert checkpoint.exists(), 'no checkpoint written'
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    from tfpriv.federated.checkpoint import read_meta
    meta = read_meta(str(checkpoint.parent))
    done = meta['rounds_done']
    assert 1 <= done < 50 and meta['history']['round'] == list(range(1, done + 1))
    from tfpriv.experiments.cli import main  # the resumed run: train.py's main, in this process
    assert main(flags + ['--rounds', str(done + 1), '--resume']) == 0
    result = capsys.readouterr()
    metrics = json.loads((checkpoint.parent / 'metrics.json').read_text())
    history = metrics['history']
    assert history['round'] == list(range(1, done + 2))
    from tfpriv.federated.dp_fedavg import epsilons
    assert history['epsilon'] == pytest.approx(epsilons(6, 3, 1.0, done + 1, 1e-2))
    assert (images / 'fedavg_mnist_mlp_dp_iid.png').exists()
    assert f"{history['epsilon'][-1]:.3f} (RDP, user level), δ = 0.01" in result.out


def test_resume_with_another_secagg_graph_degree_is_refused(tmp_path, capsys):
    """SecAgg+'s neighbours are part of the run's settings: a checkpoint of k = 4 resumes with
    k = 4 and is refused with k = 6 (the graph, hence what the server learns, would change)."""
    from tfpriv.experiments.cli import build_parser, resolve_defaults
    from tfpriv.experiments.federated import validate
    flags = ['--num-train', '1200', '--clients', '20', '--client-fraction', '0.5', '--secure-agg',
             'secagg', '--out', str(tmp_path)]
    _checkpoint_of(tmp_path, flags + ['--secagg-neighbours', '4'])
    same = ['--federated', *flags, '--secagg-neighbours', '4', '--resume']
    assert validate(resolve_defaults(build_parser().parse_args(same))) == []
    with pytest.raises(SystemExit) as info:
        main(['--federated', *flags, '--secagg-neighbours', '6', '--resume'])
    err = capsys.readouterr().err
    assert info.value.code == 2 and 'was written by a run with other settings' in err, err
    assert 'secagg_neighbours' in err, err
