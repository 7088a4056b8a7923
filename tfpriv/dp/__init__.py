"""Differential privacy for Keras: `make_private`, accounting, PATE and classic mechanisms.

`tfpriv.dp.accounting` is light (dp_accounting only); `make_private`,
`PrivateTraining`, `replace_batchnorm`, `WeightAverage` (EMA of the weights) and
`AugmultModel` (augmentation multiplicity) load TensorFlow on first use.
"""

from tfpriv.dp import accounting

_LAZY = {'make_private': 'keras', 'PrivateTraining': 'keras',
         'replace_batchnorm': 'normalization', 'WeightAverage': 'callbacks',
         'AugmultModel': 'augmult'}


def __getattr__(name):
    if name in _LAZY:
        import importlib  # pylint: disable=g-import-not-at-top
        return getattr(importlib.import_module(f'tfpriv.dp.{_LAZY[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['accounting', 'make_private', 'PrivateTraining', 'replace_batchnorm', 'WeightAverage',
           'AugmultModel']
