"""Differential privacy for Keras: `make_private`, accounting, PATE and classic mechanisms.

`tfpriv.dp.accounting` is light (dp_accounting only); `make_private` and
`PrivateTraining` load TensorFlow Privacy on first use.
"""

from tfpriv.dp import accounting

_LAZY = {'make_private', 'PrivateTraining'}


def __getattr__(name):
    if name in _LAZY:
        from tfpriv.dp import keras  # pylint: disable=g-import-not-at-top
        return getattr(keras, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['accounting', 'make_private', 'PrivateTraining']
