"""Differential privacy for Keras: `make_private`, accounting, PATE and classic mechanisms.

`tfpriv.dp.accounting` is light (dp_accounting only); `make_private` imports
TensorFlow Privacy on first use.
"""

from tfpriv.dp import accounting


def make_private(*args, **kwargs):
    """See `tfpriv.dp.make_private.make_private` (imported lazily: it loads TensorFlow)."""
    from tfpriv.dp.make_private import make_private as _make_private  # pylint: disable=g-import-not-at-top
    return _make_private(*args, **kwargs)


__all__ = ['accounting', 'make_private']
