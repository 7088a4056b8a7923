"""t-of-n Shamir secret sharing of float tensors and Keras weight lists.

    shares = split(model.get_weights(), threshold=3, num_shares=5)   # list of 5 Share
    weights = reconstruct(shares[1:4])                               # any 3 of them

Pipeline: the tensor (or list of tensors) is flattened, fixed-point encoded into
GF(p) (`tfpriv.crypto.fixed_point`, `precision` fractional bits, signed values
centred around 0) and every element is shared with its own random polynomial of
degree t - 1 (`tfpriv.crypto.shamir.field.split_field`, coefficients from the
AES-CTR keystream `tfpriv.rng.Prg` keyed from the OS CSPRNG, unless an insecure
seeded `RandomSource` is passed explicitly).

A `Share` carries everything reconstruction needs and checks: x-coordinate,
threshold, number of shares, modulus, the shapes and dtypes of the tensors, the
encoding and its precision, a scheme version and a random 128-bit split id.
`reconstruct` refuses shares that disagree on any of these, so shares of
different splits or parameters are never silently combined.

With more than t shares, `reconstruct` decodes them as a Reed-Solomon codeword
(`tfpriv.crypto.shamir.reed_solomon`): up to floor((m - t) / 2) wrong shares are
corrected and the parties that sent them are reported; more raise an error.

Shares are additive: `a + b` for shares of the same x gives a share of the sum
of the two secrets. Every share carries a public `bound` on |secret| (by default
max |secret| rounded up to a power of two, which reveals that order of
magnitude; pass `bound=` to reveal nothing beyond a bound you choose), and the
sum's bound is the sum of the bounds: `a + b` raises `FixedPointRangeError`
when that could leave the fixed-point range (`FixedPoint.check_headroom`)
instead of wrapping around to a wrong secret. The sum's split id is the sum of the two ids
mod 2^128, so sums formed the same way on every share-holder stay compatible.
"""

from __future__ import annotations

import dataclasses
import math
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from absl import logging

from tfpriv import checks
from tfpriv.crypto.shamir import field, reed_solomon
from tfpriv.crypto.fixed_point import FixedPoint
from tfpriv.crypto.secagg import UpdateSpec
from tfpriv.rng import Prg, RandomSource, as_prg

SCHEME_VERSION = 1
ENCODING = 'signed-fixed-point'
DEFAULT_PRECISION = 16
_ID_BITS = 128
# Serialized header: x, threshold, num_shares (4 bytes each), modulus (8),
# version (2), precision (1), split id (16), bound (8); then 4 bytes per
# dimension and 1 dtype byte per tensor.
_HEADER_BYTES = 4 + 4 + 4 + 8 + 2 + 1 + _ID_BITS // 8 + 8

Secret = Union[np.ndarray, List[np.ndarray]]


@dataclasses.dataclass(frozen=True, eq=False)
class Share:
    """One party's share of a split tensor or list of tensors.

    Attributes:
      x: the x-coordinate, in [1, modulus).
      values: int64 vector of field elements, one per secret element (all
        tensors flattened and concatenated).
      threshold: t, the number of shares that reconstruct.
      num_shares: n, the number of shares made.
      modulus: the prime p of the field.
      spec: shapes and dtypes of the secret tensors.
      is_list: whether the secret was a list of tensors (else one array).
      precision: fixed-point fractional bits.
      encoding: the value encoding, `signed-fixed-point`.
      split_id: random 128-bit id common to the shares of one split.
      bound: public bound on |secret values| (sums add their bounds).
      version: the share format version.
    """

    x: int
    values: np.ndarray
    threshold: int
    num_shares: int
    modulus: int
    spec: UpdateSpec
    is_list: bool
    precision: int
    split_id: int
    bound: float
    encoding: str = ENCODING
    version: int = SCHEME_VERSION

    @property
    def shape(self) -> Tuple[int, ...]:
        """Shape of the secret (first tensor's shape for a list)."""
        return self.spec.shapes[0]

    @property
    def dtype(self) -> np.dtype:
        """Dtype of the secret (first tensor's dtype for a list)."""
        return self.spec.dtypes[0]

    @property
    def nbytes(self) -> int:
        """Size on the wire: header plus ceil(log2(p) / 8) bytes per element."""
        element_bytes = (self.modulus.bit_length() + 7) // 8
        layout = sum(4 * len(shape) + 5 for shape in self.spec.shapes)
        return _HEADER_BYTES + layout + element_bytes * self.values.size

    def parameters(self) -> dict:
        """Everything that shares of one split must agree on."""
        return dict(split_id=self.split_id, version=self.version, encoding=self.encoding,
                    threshold=self.threshold, num_shares=self.num_shares,
                    modulus=self.modulus, precision=self.precision, spec=self.spec,
                    is_list=self.is_list, bound=self.bound)

    def __add__(self, other: 'Share') -> 'Share':
        if not isinstance(other, Share):
            return NotImplemented
        if other.x != self.x:
            raise ValueError(f'can only add shares at the same x, got {self.x} and {other.x}')
        mine, theirs = self.parameters(), other.parameters()
        for key in ('split_id', 'bound'):  # these may differ between the two secrets
            del mine[key], theirs[key]
        _check_same(mine, theirs, 'the second share')
        FixedPoint(self.modulus, self.precision).check_headroom(2, [self.bound, other.bound])
        total = self.values + other.values
        np.remainder(total, self.modulus, out=total)
        return dataclasses.replace(self, values=total, bound=self.bound + other.bound,
                                   split_id=(self.split_id + other.split_id) % 2**_ID_BITS)


def _check_same(expected: dict, found: dict, who: str) -> None:
    for key, value in expected.items():
        if found[key] != value:
            raise ValueError(f'{who} has {key}={found[key]!r} but the first share has '
                             f'{value!r}: shares of different splits or parameters cannot '
                             f'be combined')


def _as_arrays(secret) -> Tuple[List[np.ndarray], bool]:
    is_list = isinstance(secret, (list, tuple))
    arrays = [np.asarray(a) for a in secret] if is_list else [np.asarray(secret)]
    if is_list and not arrays:
        raise ValueError('cannot split an empty list of tensors')
    for i, array in enumerate(arrays):
        if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.floating)
                                           or np.issubdtype(array.dtype, np.integer)):
            raise TypeError(f'tensor {i} has dtype {array.dtype}: only float and integer '
                            f'tensors can be shared')
    return arrays, is_list


def split(secret: Secret, threshold: int, num_shares: int, *,
          precision: int = DEFAULT_PRECISION, modulus: int = field.DEFAULT_PRIME,
          rng: Union[RandomSource, Prg, None] = None,
          xs: Sequence[int] = None, bound: Optional[float] = None) -> List[Share]:
    """Splits a tensor or a list of tensors into `num_shares` Shamir shares.

    Args:
      secret: a float/integer array, or a list of them (`get_weights()`).
      threshold: t, shares needed to reconstruct; any t - 1 reveal nothing.
      num_shares: n >= t.
      precision: fixed-point fractional bits; values must satisfy
        |v| < (p - 1) / 2^(precision + 1).
      modulus: prime p < 2^31 (default 2^31 - 1).
      rng: randomness for the polynomial coefficients (`Prg` or `RandomSource`);
        default a Prg keyed from the OS CSPRNG.
      xs: distinct x-coordinates in [1, p); default 1..n.
      bound: public bound on |values|, carried by the shares for the headroom
        check of sums; default max |values| rounded up to a power of two (at
        most the largest encodable magnitude).

    Returns:
      `num_shares` shares with a common fresh split id.

    Raises:
      ValueError / TypeError: bad parameters, NaN/inf or out-of-range values.
    """
    arrays, is_list = _as_arrays(secret)
    modulus = field.check_split_parameters(threshold, num_shares, modulus)
    encoder = FixedPoint(modulus, precision)
    spec = UpdateSpec.of(arrays)
    flat = spec.flatten(arrays)
    encoded = encoder.encode(flat)
    bound = _public_bound(encoder, flat, bound)
    prg = as_prg(rng)
    points = tuple(range(1, num_shares + 1)) if xs is None else xs
    rows = field.split_field(encoded, threshold, num_shares, modulus, prg, points)
    split_id = int.from_bytes(prg.uint8(_ID_BITS // 8).tobytes(), 'little')
    return [Share(int(x), rows[i], int(threshold), int(num_shares), modulus, spec, is_list,
                  int(precision), split_id, bound) for i, x in enumerate(points)]


def _public_bound(encoder: FixedPoint, flat: np.ndarray, bound: Optional[float]) -> float:
    """The bound the shares carry: `bound` if given (checked), else max |flat| rounded up
    to a power of two, capped at the largest encodable magnitude."""
    largest = float(np.max(np.abs(flat))) if flat.size else 0.0
    if bound is None:
        power = 2.0**math.ceil(math.log2(largest)) if largest > 0 else 0.0
        return min(power, encoder.max_abs)
    bound = checks.number('bound', bound, minimum=0.0)
    if largest > bound:
        raise ValueError(f'a value of magnitude {largest:g} exceeds bound = {bound:g}')
    encoder.check_headroom(1, bound)
    return bound


def reconstruct_with_report(shares: Sequence[Share],
                            robust: bool = True) -> Tuple[Secret, Tuple[int, ...]]:
    """Reconstructs the secret and returns the x-coordinates of the wrong shares.

    Args:
      shares: at least `threshold` shares of one split, distinct x.
      robust: with more than t shares, decode them as a Reed-Solomon codeword,
        correcting up to floor((m - t) / 2) wrong shares. With `False` (or
        exactly t shares) the first t shares are interpolated unchecked.

    Returns:
      (secret, bad_xs): the array or list of arrays, and the x of each share
      found wrong (always empty when nothing was checked).

    Raises:
      ValueError: no/foreign/duplicate shares, fewer than t, mixed parameters.
      reed_solomon.DecodingError: more wrong shares than can be corrected.
    """
    if isinstance(shares, Share) or not isinstance(shares, (list, tuple)):
        raise TypeError(f'expected a list of Share, got {type(shares).__name__}')
    if not shares:
        raise ValueError('no shares to reconstruct from')
    for i, share in enumerate(shares):
        if not isinstance(share, Share):
            raise TypeError(f'item {i} is a {type(share).__name__}, not a Share')
    first = shares[0]
    for i, share in enumerate(shares[1:], start=1):
        _check_same(first.parameters(), share.parameters(), f'share {i}')
    xs = [share.x for share in shares]
    duplicates = sorted({x for x in xs if xs.count(x) > 1})
    if duplicates:
        raise ValueError(f'duplicate shares for x = {duplicates}: each party counts once')
    if len(shares) < first.threshold:
        raise ValueError(f'need at least threshold = {first.threshold} shares to '
                         f'reconstruct, got {len(shares)}')
    for share in shares:
        if share.values.shape != (first.spec.size,):
            raise ValueError(f'share at x={share.x} holds {share.values.shape} values, '
                             f'expected ({first.spec.size},)')
    ys = [share.values for share in shares]
    if robust and len(shares) > first.threshold:
        encoded, bad = reed_solomon.decode(xs, np.stack(ys), first.threshold, first.modulus)
        if bad:
            logging.warning('Shamir reconstruction corrected wrong shares from x = %s', bad)
    else:
        t = first.threshold
        encoded, bad = field.reconstruct_field(xs[:t], ys[:t], first.modulus), ()
    values = FixedPoint(first.modulus, first.precision).decode(encoded)
    arrays = first.spec.unflatten(values)
    return (arrays if first.is_list else arrays[0]), tuple(bad)


def reconstruct(shares: Sequence[Share], robust: bool = True) -> Secret:
    """The secret of `shares` (see `reconstruct_with_report`)."""
    return reconstruct_with_report(shares, robust)[0]
