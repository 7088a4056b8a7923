"""The `train.py` harness: flags, run directories, resume bookkeeping, figures, metrics JSON.

Nothing in the library imports this package. Modules: `cli` (the parser and
dispatch of every mode), `dpsgd` (the DP-SGD / plain training run with
checkpoints), `federated` (`--federated`), `pate` (`--pate`), `flags` (helpers the
modes share) and `plotting` (the figures of every mode).
"""
