"""Regenerates the README's four seed figures with train.py on full MNIST and prints a table.

    .venv/bin/python benchmarks/seed_reproduction.py            # runs what is missing
    .venv/bin/python benchmarks/seed_reproduction.py --report   # only prints the table
    .venv/bin/python benchmarks/seed_reproduction.py --quiet    # no progress, train.py --verbose 0

Runs `train.py --model {mlp,cnn} --lr 0.5 --batch-size 300 --compare` (clip 0.9,
noise 0.9, 15 epochs: the seed tutorial's setting), which writes
images/<model>_dp.png, images/<model>_no-dp.png, images/<model>_compare.png and
runs/<model>_<dp|no-dp>/metrics.json. An interrupted run resumes (--resume).
Progress over the runs (and train.py's own, at --verbose 2) goes to stderr unless
`--quiet`.
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfpriv.experiments.progress import StderrProgress  # noqa: E402  pylint: disable=wrong-import-position
from tfpriv.progress import each  # noqa: E402  pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ['--lr', '0.5', '--batch-size', '300', '--epochs', '15']


def metrics_path(model: str, dp: bool) -> str:
    return os.path.join(ROOT, 'runs', f"{model}_{'dp' if dp else 'no-dp'}", 'metrics.json')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--report', action='store_true', help='only print the table')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress on stderr (train.py runs with --verbose 0)')
    args = parser.parse_args()
    missing = [] if args.report else [
        (model, dp) for model in ('mlp', 'cnn') for dp in (True, False)
        if not os.path.exists(metrics_path(model, dp))]
    for model, dp in each(StderrProgress(verbose=0 if args.quiet or args.report else 1), 'runs',
                          missing):
        cmd = [sys.executable, 'train.py', '--model', model, '--dp' if dp else '--no-dp',
               '--resume', *FLAGS, '--verbose', '0' if args.quiet else '2']
        print('running:', ' '.join(cmd[1:]), flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
    print(f"{'run':10} {'test acc':>8} {'ε (RDP)':>8} {'ε (PLD)':>8} {'δ':>6}")
    for model in ('mlp', 'cnn'):
        for dp in (True, False):
            if not os.path.exists(metrics_path(model, dp)):
                continue
            with open(metrics_path(model, dp)) as f:
                m = json.load(f)
            pld = m.get('epsilon_pld')
            pld = f'{pld:8.3f}' if pld is not None else f"{'-':>8}"
            eps = f"{m['epsilon']:8.3f} {pld} {m['delta']:6.0e} {m.get('sampling', '')}" if dp else ''
            print(f"{model + ('_dp' if dp else '_no-dp'):10} {m['test_accuracy']:8.4f} {eps}")


if __name__ == '__main__':
    main()
