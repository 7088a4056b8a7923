"""`SharedTensor`: a fixed-point tensor additively shared among the parties of a `Cluster`.

Each party holds one uint64 share; the tensor object itself is only a handle
(the shares live in the parties' stores and are dropped with the handle).
Values carry `precision`: the cluster's f for fixed-point reals, 0 for exact
integers (comparison bits, argmax indices). Linear operations are local;
products cost one Beaver round plus one truncation round when both factors are
fixed point; comparisons are exact (bit decomposition, `compare`).

Operations and their online rounds (n parties, any n >= 2):

  +, -, negation, sum, reshape, transpose, indexing     0 (local)
  x * public int, x @ public int matrix                 0
  x * public float / matrix, mean                       1 (truncation)
  x * y, x @ y, conv2d(x, w) on two shared tensors     1 (+1 truncation)
  <, >, <=, >= (shared 0/1 result)                      8
  relu, maximum                                         8
  max_pool2d(k x k), argmax over k                      8 ceil(log2 k) per axis
  reveal                                                1

Mixing an integer tensor with a fixed-point one promotes the integer (a local
multiplication by 2^f). Tensors of different clusters, or of different
fixed-point precisions, cannot be mixed.
"""

from __future__ import annotations

import functools
import numbers
import weakref
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from tfpriv.crypto.smpc import compare
from tfpriv.crypto.smpc.conv import Conv2DSpec
from tfpriv.crypto.smpc.party import Cluster, Party, Shares
from tfpriv.crypto.smpc.protocols import beaver, truncate
from tfpriv.crypto.smpc.ring import TRUNCATION_LIMIT, Encoding, from_int, matmul, signed
from tfpriv.crypto.smpc.sharing import combine, split
from tfpriv.errors import FixedPointRangeError

Public = Union[numbers.Number, np.ndarray, Sequence]
_RING = Encoding(0)  # range checks of ring words, whatever their precision


def _counted(name: str):
    """Attributes the network traffic of a method to the operation `name`.

    Also silences NumPy's overflow warning for 0-d shares: wrapping is the ring.
    """
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            with self.cluster.network.operation(name), np.errstate(over='ignore'):
                return method(self, *args, **kwargs)
        return wrapper
    return decorate


def _as_public(value: Public) -> np.ndarray:
    if isinstance(value, SharedTensor):
        raise TypeError('expected a public value, got a SharedTensor')
    if not isinstance(value, (numbers.Number, np.ndarray, np.generic, list, tuple)):
        raise TypeError(f'cannot combine a SharedTensor with a {type(value).__name__}')
    array = np.asarray(value)
    if array.dtype.kind not in 'biuf':
        raise TypeError(f'public operands must be numeric, got dtype {array.dtype}')
    return array


def _is_integral(array: np.ndarray) -> bool:
    return array.dtype.kind in 'biu'


def _encode_integers(array: np.ndarray) -> np.ndarray:
    ints = array.astype(np.int64)
    _RING.check_range(ints)
    return from_int(ints)


class SharedTensor:
    """A tensor secret-shared additively over Z_2^64 (see the module docstring)."""

    __array_ufunc__ = None  # make NumPy defer `array op tensor` to our reflected operators

    def __init__(self, cluster: Cluster, shares: Shares, precision: int):
        """Files `shares` (one per party, index-aligned) with the parties; internal."""
        self.cluster = cluster
        self.precision = int(precision)
        self.shape: Tuple[int, ...] = tuple(shares[0].shape)
        self._handle = cluster.store(shares)
        weakref.finalize(self, cluster.drop, self._handle)

    # ---- creation and output -------------------------------------------------------------

    @classmethod
    def share(cls, cluster: Cluster, values: Public, owner: Optional[Party] = None,
              precision: Optional[int] = None) -> 'SharedTensor':
        """`owner` encodes `values` and sends one share to each party (one round).

        Args:
          cluster: the computing parties.
          values: reals (or integers with `precision=0`).
          owner: the input owner (a `cluster.client`); default an anonymous client.
          precision: fixed-point precision; default the cluster's, 0 for integers.

        Raises:
          FixedPointRangeError: a value outside the fixed-point range.
        """
        if not isinstance(cluster, Cluster):
            raise TypeError(f'cluster must be a Cluster, got {type(cluster).__name__}')
        values = _as_public(values)
        precision = cluster.encoding.precision if precision is None else precision
        if precision not in (0, cluster.encoding.precision):
            raise ValueError(f'precision must be 0 (integers) or the cluster\'s '
                             f'{cluster.encoding.precision}, got {precision}')
        if precision == 0 and not _is_integral(values):
            raise TypeError(f'precision=0 shares integers, got dtype {values.dtype}')
        words = (_encode_integers(values) if precision == 0
                 else cluster.encoding.encode(values))
        owner = cluster.client('input owner') if owner is None else owner
        shares = split(words, cluster.num_parties, owner.prg)
        with cluster.network.operation('share'):
            cluster.network.deliver(cluster.num_parties, words.nbytes)
        return cls(cluster, shares, precision)

    def reveal(self, to: Optional[Party] = None) -> np.ndarray:
        """The plaintext, sent to party `to` only (one round); `None` opens it to all parties.

        Returns:
          float64 values (int64 for integer tensors), as `to` reconstructs them.

        Raises:
          FixedPointRangeError: the value left the fixed-point range (see `ring`).
        """
        if to is not None and not isinstance(to, Party):
            raise TypeError(f'to must be a Party or None, got {type(to).__name__}')
        network, n = self.cluster.network, self.cluster.num_parties
        with network.operation('reveal'):
            if to is None:
                (words,) = network.broadcast([(s,) for s in self._shares()], (np.add,))
            else:
                senders = n - 1 if any(p is to for p in self.cluster.parties) else n
                network.deliver(senders, 8 * self.size)
                words = combine(self._shares())
        if self.precision == 0:
            return _RING.lift(words)
        return _RING.decode(words, self.precision)

    # ---- bookkeeping ---------------------------------------------------------------------

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self) -> str:
        kind = f'fixed point, {self.precision} fractional bits' if self.precision else 'integer'
        return (f'SharedTensor(shape={self.shape}, {kind}, '
                f'{self.cluster.num_parties} parties)')

    def _shares(self) -> Shares:
        return self.cluster.shares(self._handle)

    def _new(self, shares: Shares, precision: Optional[int] = None) -> 'SharedTensor':
        precision = self.precision if precision is None else precision
        return SharedTensor(self.cluster, shares, precision)

    def _local(self, fn) -> 'SharedTensor':
        return self._new([fn(x) for x in self._shares()])

    def _check_peer(self, other: 'SharedTensor') -> None:
        if other.cluster is not self.cluster:
            mine, theirs = self.cluster, other.cluster
            detail = ''
            if mine.num_parties != theirs.num_parties:
                detail += f', {mine.num_parties} vs {theirs.num_parties} parties'
            if mine.encoding != theirs.encoding:
                detail += (f', fixed-point encodings differ: {mine.encoding.precision} vs '
                           f'{theirs.encoding.precision} fractional bits')
            raise ValueError(f'the tensors are shared among different parties (clusters){detail}; '
                             f'share both in the same cluster')
        if self.precision and other.precision and self.precision != other.precision:
            raise ValueError(f'fixed-point encodings differ: {self.precision} vs '
                             f'{other.precision} fractional bits')

    def _promoted(self, precision: int) -> Shares:
        """Our shares at `precision` (an integer tensor times 2^f; nothing otherwise)."""
        if self.precision == precision:
            return self._shares()
        factor = np.uint64(1 << (precision - self.precision))
        return [x * factor for x in self._shares()]

    def _public_factor(self, value: np.ndarray) -> Tuple[np.ndarray, int]:
        """A public factor as words and its frac bits (exact integers for integer dtypes)."""
        if _is_integral(value):
            return _encode_integers(value), 0
        return self.cluster.encoding.encode(value), self.cluster.encoding.precision

    # ---- linear operations ---------------------------------------------------------------

    def _broadcast_shape(self, other_shape: Tuple[int, ...]) -> None:
        try:
            np.broadcast_shapes(self.shape, other_shape)
        except ValueError:
            raise ValueError(f'shapes {self.shape} and {other_shape} do not broadcast') from None

    def _add(self, other, negate_other: bool) -> 'SharedTensor':
        op = np.subtract if negate_other else np.add
        if isinstance(other, SharedTensor):
            self._check_peer(other)
            self._broadcast_shape(other.shape)
            frac = max(self.precision, other.precision)
            return self._new([op(x, y) for x, y in zip(self._promoted(frac),
                                                         other._promoted(frac))], frac)
        value = _as_public(other)
        self._broadcast_shape(value.shape)
        frac = self.precision if _is_integral(value) else self.cluster.encoding.precision
        words = self.cluster.encoding.encode(value) if frac else _encode_integers(value)
        shape = np.broadcast_shapes(self.shape, value.shape)
        shares = self._promoted(frac)
        return self._new([op(x, words) if i == 0 else np.broadcast_to(x, shape).copy()
                          for i, x in enumerate(shares)], frac)

    @_counted('add')
    def __add__(self, other) -> 'SharedTensor':
        return self._add(other, negate_other=False)

    __radd__ = __add__

    @_counted('subtract')
    def __sub__(self, other) -> 'SharedTensor':
        return self._add(other, negate_other=True)

    @_counted('subtract')
    def __rsub__(self, other) -> 'SharedTensor':
        return (-self)._add(other, negate_other=False)

    @_counted('negate')
    def __neg__(self) -> 'SharedTensor':
        return self._local(lambda x: np.uint64(0) - x)

    @_counted('sum')
    def sum(self, axis=None, keepdims: bool = False) -> 'SharedTensor':
        """Sum over `axis` (all axes by default); local."""
        return self._local(lambda x: np.asarray(np.sum(x, axis=axis, keepdims=keepdims,
                                                       dtype=np.uint64)))

    @_counted('mean')
    def mean(self, axis=None, keepdims: bool = False) -> 'SharedTensor':
        """Mean over `axis`: sum / N as (sum >> p) (2^p / N), p = floor(log2 N).

        The factor 2^p / N lies in (1/2, 1], so its f-bit rounding costs a relative
        error of at most 2^-f, whatever N; the two truncations add two units in
        the last place. When N is a power of two only the exact shift remains.
        """
        total = self.sum(axis, keepdims)
        if not self.precision:
            total = total._new(total._promoted(self.cluster.encoding.precision),
                               self.cluster.encoding.precision)
        count = self.size // max(total.size, 1)
        shift = count.bit_length() - 1
        total = total._new(self._truncate(total._shares(), shift))
        return total if count == 1 << shift else total * ((1 << shift) / count)

    def reshape(self, *shape) -> 'SharedTensor':
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        try:
            np.empty(self.shape, dtype=np.uint8).reshape(shape)
        except ValueError:
            raise ValueError(f'cannot reshape {self.shape} into {tuple(shape)}') from None
        return self._local(lambda x: x.reshape(shape))

    def transpose(self, *axes) -> 'SharedTensor':
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if axes and sorted(int(a) % max(self.ndim, 1) for a in axes) != list(range(self.ndim)):
            raise ValueError(f'axes {tuple(axes)} are not a permutation of {self.ndim} axes')
        return self._local(lambda x: np.ascontiguousarray(np.transpose(x, axes or None)))

    @property
    def T(self) -> 'SharedTensor':  # pylint: disable=invalid-name
        return self.transpose()

    def __getitem__(self, key) -> 'SharedTensor':
        if isinstance(key, SharedTensor):
            raise TypeError('cannot index with a SharedTensor (that would reveal the index)')
        return self._local(lambda x: np.ascontiguousarray(x[key]))

    # ---- products ------------------------------------------------------------------------

    def _product(self, other, op, check, terms: int,
                 reflected: bool = False) -> 'SharedTensor':
        """op(self, other) (or op(other, self) if `reflected`), rescaled to one encoding.

        `check(shape_a, shape_b)` validates the operand shapes first; `terms` is the
        number of products summed into one output (K of a matmul, 1 element-wise).
        Two fixed-point factors give 2f fractional bits, truncated back to f. With
        the cluster's `check_overflow`, the operands are bounded securely *before*
        multiplying (`_check_operands`): a product that wrapped modulo 2^64 could not
        be recognized afterwards.
        """
        if isinstance(other, SharedTensor):
            self._check_peer(other)
            check(self.shape, other.shape)
            if self.cluster.check_overflow:
                self._check_operands([self._shares(), other._shares()], terms)
            shares = beaver(self.cluster, self._shares(), other._shares(), op)
            other_frac = other.precision
        else:
            value = _as_public(other)
            check(*((value.shape, self.shape) if reflected else (self.shape, value.shape)))
            words, other_frac = self._public_factor(value)
            if self.cluster.check_overflow:
                self._check_operands([self._shares()], terms, public=words)
            shares = [op(words, x) if reflected else op(x, words) for x in self._shares()]
        if self.precision and other_frac:
            return self._new(truncate(self.cluster, shares, other_frac))
        return self._new(shares, self.precision + other_frac)

    def _check_operands(self, operands: List[Shares], terms: int,
                        public: Optional[np.ndarray] = None) -> None:
        """Raises FixedPointRangeError unless a sum of `terms` products stays below 2^62 words.

        With A, B bounds on the operands' words, |sum of K products| <= K A B, so it
        suffices that K A B <= 2^62: for two shared operands A = B = 2^floor((62 -
        ceil(log2 K)) / 2) (2^31 words, |x| < 2^(31 - f), element-wise); with a public
        factor B is its exact largest word and A = floor(2^62 / (K B)). Each shared
        operand is tested securely (`_outside`); only the out-of-range flags are
        opened, all 0 for a valid computation.
        """
        if public is None:
            bits = (62 - max(terms - 1, 0).bit_length()) // 2
            limit = 1 << bits
        else:
            largest = int(np.max(np.abs(signed(public)))) if public.size else 0
            limit = TRUNCATION_LIMIT // (max(terms, 1) * max(largest, 1))
        flags = [self._outside(shares, limit) for shares in operands]
        count = sum(int(np.count_nonzero(f)) for f in flags)
        if count or limit < 1:
            raise FixedPointRangeError(
                f'{count} operand value(s) of a product reach {limit / 2.0**self.precision:g} in '
                f'magnitude: the product value could have left the fixed-point range and '
                f'wrapped modulo 2^64 (a sum of {terms} products of words must stay below '
                f'2^62, i.e. |x y| K < 2^(62 - 2f)); scale the operands down or lower precision')

    def _outside(self, shares: Shares, limit: int) -> np.ndarray:
        """Opened bits [x >= L or x < -L], L = min(limit, 2^62), for shared signed words.

        msb(L - 1 - x) or msb(x + L): exact for every x in [-2^63, 2^63), since
        whenever either sum wraps around, x is outside [-L, L) anyway.
        """
        bound = np.uint64(max(min(limit, TRUNCATION_LIMIT), 1))
        both = [np.stack([bound - np.uint64(1) - x, x + bound]) if i == 0
                else np.stack([np.uint64(0) - x, x]) for i, x in enumerate(shares)]
        bits = compare.msb(self.cluster, both)
        (opened,) = self.cluster.network.broadcast([(b,) for b in bits], (np.bitwise_xor,))
        return opened[0] | opened[1]

    def _truncate(self, shares: Shares, shift: int) -> Shares:
        """Exact truncation of a sum, after the cluster's optional secure check |x| < 2^62."""
        if self.cluster.check_overflow and np.any(self._outside(shares, TRUNCATION_LIMIT)):
            raise FixedPointRangeError('a sum left the fixed-point range: it must stay below '
                                       '2^62 words before truncation')
        return truncate(self.cluster, shares, shift)

    @_counted('multiply')
    def __mul__(self, other) -> 'SharedTensor':
        """Element-wise product (broadcasting), by a shared or a public tensor."""
        return self._product(other, np.multiply, lambda a, b: self._broadcast_shape(b), 1)

    __rmul__ = __mul__

    @_counted('matmul')
    def __matmul__(self, other) -> 'SharedTensor':
        """self (..., K) @ other (K, N)."""
        return self._product(other, matmul, _check_matmul, self.shape[-1] if self.shape else 1)

    @_counted('matmul')
    def __rmatmul__(self, other) -> 'SharedTensor':
        """public (..., K) @ self (K, N)."""
        return self._product(other, matmul, _check_matmul, self.shape[0] if self.shape else 1,
                             reflected=True)

    @_counted('conv2d')
    def conv2d(self, kernel, strides: Union[int, Tuple[int, int]] = 1,
               padding: str = 'valid') -> 'SharedTensor':
        """Keras-style 2-D convolution of self (B, H, W, C) with kernel (KH, KW, C, F).

        `kernel` may be shared or public; im2col then a (Beaver) matrix product.
        """
        strides = (strides, strides) if isinstance(strides, int) else tuple(strides)
        spec = Conv2DSpec(strides, padding)
        terms = int(np.prod(np.shape(kernel)[:3])) if np.ndim(kernel) == 4 else 1
        return self._product(kernel, spec, spec.output_shape, terms)

    # ---- comparisons ---------------------------------------------------------------------

    def _sign_bits(self, other, flip: bool) -> Shares:
        """XOR shares of [self < other] (of [self > other] if `flip`)."""
        diff = self - other
        if flip:
            diff = -diff
        return compare.msb(self.cluster, diff._shares())

    def _bits_tensor(self, bits: Shares) -> 'SharedTensor':
        return SharedTensor(self.cluster, compare.to_arithmetic(self.cluster, bits), 0)

    @_counted('compare')
    def __lt__(self, other) -> 'SharedTensor':
        """Shared 0/1 integers [self < other], exact."""
        return self._bits_tensor(self._sign_bits(other, flip=False))

    @_counted('compare')
    def __gt__(self, other) -> 'SharedTensor':
        return self._bits_tensor(self._sign_bits(other, flip=True))

    @_counted('compare')
    def __ge__(self, other) -> 'SharedTensor':
        return self._bits_tensor(compare.negate_bits(self._sign_bits(other, flip=False)))

    @_counted('compare')
    def __le__(self, other) -> 'SharedTensor':
        return self._bits_tensor(compare.negate_bits(self._sign_bits(other, flip=True)))

    @_counted('relu')
    def relu(self) -> 'SharedTensor':
        """max(x, 0), exact: x times the bit NOT msb(x)."""
        shares = self._shares()
        keep = compare.negate_bits(compare.msb(self.cluster, shares))
        return self._new(compare.bit_times(self.cluster, keep, shares))

    @_counted('maximum')
    def maximum(self, other) -> 'SharedTensor':
        """Element-wise max(self, other), exact (ties pick either: they are equal)."""
        diff = self - other
        keep = compare.negate_bits(compare.msb(self.cluster, diff._shares()))
        return diff._new(compare.bit_times(self.cluster, keep, diff._shares())) + other

    @_counted('max_pool2d')
    def max_pool2d(self, pool_size: Union[int, Tuple[int, int]] = 2,
                   strides: Union[None, int, Tuple[int, int]] = None) -> 'SharedTensor':
        """Keras MaxPooling2D with 'valid' padding on self (B, H, W, C), exact.

        Max is separable: the max over each row window first, then over the column
        window of those, each a tournament of ceil(log2 k) comparison levels.
        """
        pool = _pair(pool_size, 'pool_size')
        strides = pool if strides is None else _pair(strides, 'strides')
        if self.ndim != 4:
            raise ValueError(f'max_pool2d needs a (batch, height, width, channels) tensor, '
                             f'got shape {self.shape}')
        shares = self._shares()
        for axis, window, stride in ((2, pool[1], strides[1]), (1, pool[0], strides[0])):
            if shares[0].shape[axis] < window:
                raise ValueError(f'a pool of {window} does not fit an axis of '
                                 f'{shares[0].shape[axis]}')
            count = (shares[0].shape[axis] - window) // stride + 1
            candidates = []
            for offset in range(window):
                index = [slice(None)] * 4
                index[axis] = slice(offset, offset + stride * (count - 1) + 1, stride)
                candidates.append([x[tuple(index)] for x in shares])
            shares, _ = _tournament(self.cluster, candidates)
        return self._new(shares)

    @_counted('argmax')
    def argmax(self, axis: int = -1) -> 'SharedTensor':
        """Shared int64 indices of the maxima along `axis` (the first one on ties), exact."""
        if not -self.ndim <= axis < self.ndim:
            raise ValueError(f'axis {axis} is out of range for shape {self.shape}')
        moved = [np.moveaxis(x, axis, 0) for x in self._shares()]
        values = [[x[j] for x in moved] for j in range(moved[0].shape[0])]
        zero = np.zeros(moved[0].shape[1:], dtype=np.uint64)
        indices = [[zero + np.uint64(j) if i == 0 else zero for i in range(len(moved))]
                   for j in range(len(values))]
        _, best = _tournament(self.cluster, values, indices)
        return self._new(best, 0)


def _pair(value, name: str) -> Tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(int(v) < 1 for v in pair):
        raise ValueError(f'{name} must be a positive int or a pair of them, got {value}')
    return int(pair[0]), int(pair[1])


def _check_matmul(shape_a: Tuple[int, ...], shape_b: Tuple[int, ...]) -> None:
    if len(shape_a) < 1 or len(shape_b) != 2 or shape_a[-1] != shape_b[0]:
        raise ValueError(f'matmul needs shapes (..., K) and (K, N), got {shape_a} and {shape_b}')


def _tournament(cluster: Cluster, values, payloads=None) -> Tuple[Shares, Optional[Shares]]:
    """The maximum of candidate values (each a Shares list) and the payload that goes with it.

    Pairs (left, right) are compared level by level, all pairs of a level in
    one batch, and one bit injection selects the value and the payload
    together; left wins ties, so the earliest candidate wins among equals.
    """
    n = cluster.num_parties
    tracks = [values] if payloads is None else [values, payloads]
    while len(tracks[0]) > 1:
        pairs = len(tracks[0]) // 2
        lefts, rights = ([[np.stack([c[i] for c in track[side:2 * pairs:2]]) for i in range(n)]
                          for track in tracks] for side in (0, 1))
        diffs = [[a - b for a, b in zip(left, right)] for left, right in zip(lefts, rights)]
        keep = compare.negate_bits(compare.msb(cluster, diffs[0]))  # left value >= right value
        chosen = compare.bit_times(cluster, keep, [np.stack(parts) for parts in zip(*diffs)])
        for t, track in enumerate(tracks):
            best = [right + z[t] for right, z in zip(rights[t], chosen)]
            tracks[t] = [[x[j] for x in best] for j in range(pairs)] + track[2 * pairs:]
    return tracks[0][0], (None if payloads is None else tracks[1][0])


def stack(tensors: Sequence[SharedTensor], axis: int = 0) -> SharedTensor:
    """Stacks shared tensors of one cluster and shape along a new axis; local."""
    if not tensors:
        raise ValueError('nothing to stack')
    first = tensors[0]
    frac = max(t.precision for t in tensors)
    for t in tensors[1:]:
        first._check_peer(t)
        if t.shape != first.shape:
            raise ValueError(f'cannot stack shapes {first.shape} and {t.shape}')
    per_tensor = [t._promoted(frac) for t in tensors]
    return first._new([np.stack(parts, axis=axis) for parts in zip(*per_tensor)], frac)
