"""Empirical privacy audit of a training run: membership inference and a canary ε lower bound.

    report = tfpriv.dp.audit.audit_training(train_fn, data, num_train=1000,
                                            num_canaries=200, seed=0)

`mia`: threshold and trained membership inference attacks (AUC, advantage);
`bound`: ε lower bound from correct membership guesses (Steinke, Nasr, Jagielski 2023);
`canary`: mislabelled canaries and the one-run canary audit;
`training`: `audit_training` → `AuditReport`. NumPy/SciPy only; TensorFlow is
used only through the model `train_fn` returns.
"""

from tfpriv.dp.audit.bound import audit_p_value, epsilon_lower_bound
from tfpriv.dp.audit.canary import CanaryAudit, canary_audit, make_canaries
from tfpriv.dp.audit.mia import (AttackResult, attack_features, attacker_advantage,
                                 per_example_loss, roc_auc, roc_curve, threshold_attack,
                                 trained_attack)
from tfpriv.dp.audit.training import AuditReport, audit_training

__all__ = ['AttackResult', 'AuditReport', 'CanaryAudit', 'attack_features', 'attacker_advantage',
           'audit_p_value', 'audit_training', 'canary_audit', 'epsilon_lower_bound',
           'make_canaries', 'per_example_loss', 'roc_auc', 'roc_curve', 'threshold_attack',
           'trained_attack']
