"""Every exception tfpriv raises on purpose, in one place.

Each is a subclass of the built-in error a caller would already catch
(`ValueError` for bad input, `ArithmeticError` for a computation that would
return a wrong number, `RuntimeError` for an unavailable resource), so code
that catches the built-ins keeps working.
"""

from __future__ import annotations


class ResumeMismatch(ValueError):
    """A run directory holds a checkpoint of a different configuration than the one asked to resume."""


class CheckpointExists(ValueError):
    """A run directory already holds a checkpoint and the run was asked neither to resume nor to overwrite it."""


class CorruptCheckpoint(ValueError):
    """A checkpoint file is truncated or not a checkpoint: it cannot be resumed."""


class DatasetUnavailableError(RuntimeError):
    """The data set's file is neither cached nor downloadable; the message says where to put it."""


class FixedPointRangeError(ValueError, OverflowError):
    """A value, or a planned sum of values, does not fit the fixed-point range of the encoding.

    Also an `OverflowError`, which the SMPC ring raised for the same condition before
    the fixed-point codecs were merged.
    """


class DecodingError(ValueError):
    """More Shamir shares are wrong than the Reed-Solomon redundancy can correct."""


class InsecureParametersError(ValueError):
    """RLWE parameters give less than 128-bit security and `insecure=True` was not passed."""


class SerializationError(ValueError):
    """The bytes are not a valid ciphertext for the expected parameters."""


class NoiseBudgetError(ArithmeticError):
    """The tracked RLWE noise may exceed q/(2t): decrypting could return a wrong result."""


class PlaintextOverflowError(ArithmeticError):
    """The tracked plaintext bound reaches t/2: the centred result would wrap modulo t."""


class UnsupportedLayerError(ValueError):
    """The model contains a layer or activation that has no exact SMPC evaluation here."""


class DropoutError(RuntimeError):
    """Too many clients dropped out of a secure-aggregation round for the survivors to unmask it."""


class SchemeImportError(ImportError):
    """A registered secure-aggregation scheme failed to import; the message names it and why."""


class MalformedMessageError(ValueError):
    """A party's protocol message has the wrong number of arrays, shape or dtype."""


class InconsistentResultError(ArithmeticError):
    """A revealed aggregate is impossible (e.g. a count outside [0, N]): a party deviated."""


class WorkerIsolationError(RuntimeError):
    """The kernel refused the private network namespace that confines a local TFF worker."""


class WorkerUnreachable(RuntimeError):
    """A TFF worker did not answer within the timeout; the message names its address."""


class WorkerLost(RuntimeError):
    """A TFF worker exited or stopped answering during a run; the message names it."""


class InsecureWorkerError(ValueError):
    """A remote TFF worker address is not loopback: its gRPC channel would be plaintext and
    unauthenticated (reach it through an SSH tunnel, or pass `insecure=True`)."""


class FastClippingError(ValueError):
    """The fast (tapped) clipping path cannot bound every example's gradient for this model or call."""


class RoundingError(ArithmeticError):
    """Conditional randomized rounding found no rounding within its norm bound."""
