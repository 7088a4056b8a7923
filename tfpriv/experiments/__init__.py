"""The `train.py` harness: flags, run directories, resume bookkeeping, figures, metrics JSON.

Nothing in the library imports this package. Modules: `cli` (the parser and
dispatch of every mode), `dpsgd` (the DP-SGD / plain training run with
checkpoints), `federated` (`--federated`), `pate` (`--pate`), `encrypted`
(`--encrypted-train`), `audit` (`--audit`), `flags` (helpers the modes share),
`plotting` (the figures of every mode), `progress` (the progress bars on stderr) and
`report` (the summary every mode ends with, and its metrics.json).
"""
