"""Per-example gradient *forms*: what one tap knows about dL_b/dθ for one variable θ.

A form turns the recorded forward tensors and the backward signal G = dL/dZ into
(1) every example's squared gradient norm and (2) the sum over examples of
w_b dL_b/dθ for clip weights w_b: the book-keeping trick of Bu et al. 2023
(arXiv:2210.00038), no second backward pass.

- `Linear`: dL_b/dW = A_b^T G_b, A_b (T x K) the layer inputs (or conv patches),
  G_b (T x O), optionally in g independent groups. Its squared norm is either
  the ghost norm <A_b A_b^T, G_b G_b^T> (Goodfellow 2015, arXiv:1510.01799; Li et
  al. 2022, arXiv:2110.05679 for sequences), O(T^2 (K + O)), or the norm of the
  materialised A_b^T G_b, O(T K O): the cheaper one per layer (mixed ghost
  clipping, Bu et al. 2022, arXiv:2205.10683), counting the weighted sum too
  (`linear_ghost`: with book-keeping the explicit gradient makes it almost free).
- `Rows`: an embedding table E (V x d): dL_b/dE = sum_t e_{i_bt} G_bt^T; ghost
  norm sum_{t,s} [i_bt = i_bs] <G_bt, G_bs>, or explicit rows when V d <= 2 T^2.
- `Explicit`: the per-example gradient itself (biases, normalization scales).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, List, Optional, Tuple, Union

import tensorflow as tf

ToVariable = Callable[[tf.Tensor], tf.Tensor]


def rows_ghost(positions: Optional[int], size: int) -> bool:
    """Embedding tables: Bu et al. 2022's rule, ghost norm when 2 T^2 < V d; T unknown: no."""
    return positions is not None and 2 * positions * positions < size


EXPLICIT_LIMIT = 2 ** 18  # floats of one example's kernel gradient ever kept explicitly (memory cap)
BATCHED_PRODUCT_COST = 1.45  # per-example products / one large product of the same FLOPs
CACHE_FLOATS = 2 ** 15  # per-example gradient floats beyond which B = 256 of them (32 MiB) spill
SPILL_COST = 8  # multiply-adds' worth of time per float of a spilled explicit gradient


def linear_ghost(positions: Optional[int], inputs: int, outputs: int) -> bool:
    """Ghost norm for a K x O kernel over T positions? A cost model with book-keeping, per
    example: ghost T^2 (K + O) (two Gram matrices) + T K O (the weighted sum: one large
    product over the batch); explicit c T K O (B small products, c = `BATCHED_PRODUCT_COST`)
    + 2 K O (norm, weighted sum) + s K O when K O > `CACHE_FLOATS` (s = `SPILL_COST`: the B
    gradients leave the cache and the path turns memory-bound). So ghost iff
    T^2 (K + O) < (c - 1) T K O + 2 K O [+ s K O], or always when K O > `EXPLICIT_LIMIT`.
    c and s were read off `benchmarks/ghost_vs_explicit.py`. T unknown: explicit."""
    if positions is None:
        return False
    size = inputs * outputs
    explicit_extra = (BATCHED_PRODUCT_COST - 1) * positions * size + 2 * size
    explicit_extra += SPILL_COST * size if size > CACHE_FLOATS else 0
    return positions * positions * (inputs + outputs) < explicit_extra or size > EXPLICIT_LIMIT


@dataclasses.dataclass
class Explicit:
    """The per-example gradient `per_example` (B, *variable.shape) itself."""

    variable: tf.Variable
    per_example: tf.Tensor

    def sq_norms(self) -> tf.Tensor:
        flat = tf.reshape(self.per_example, [tf.shape(self.per_example)[0], -1])
        return tf.reduce_sum(tf.square(flat), axis=1)

    def weighted_sum(self, weights: tf.Tensor) -> tf.Tensor:
        return tf.tensordot(weights, self.per_example, 1)


def _by_group(t: tf.Tensor) -> tf.Tensor:
    """(B, g, T, X) -> (g, B T, X): one matmul per group sums over examples and positions
    (faster than the equivalent `einsum` on CPU)."""
    groups = t.shape[1]
    if groups != 1:
        t = tf.transpose(t, [1, 0, 2, 3])
    return tf.reshape(t, [groups, -1, t.shape[-1]])


@dataclasses.dataclass
class Linear:
    """dL_b/dW from A (B, g, T, K) and G (B, g, T, O).

    `to_variable` maps (N, g, K, O) to (N, *W.shape). With `offsets` = k > 1, A's group
    axis holds the k kernel offsets of a convolution, (B, k, T, C), all against one
    G (B, 1, T, O) (broadcast): dL_b/dW[offset i] = A_bi^T G_b, and the squared norm and
    the Gram terms sum over the offsets as over any split of K = k C.
    """

    variable: tf.Variable
    a: tf.Tensor
    g: tf.Tensor
    to_variable: ToVariable
    offsets: int = 1

    @property
    def ghost(self) -> bool:
        _, positions, inputs = self.a.shape[1:]
        return linear_ghost(positions, inputs * self.offsets, self.g.shape[-1])

    @functools.cached_property
    def _products(self) -> Tuple[tf.Tensor, bool]:
        """(A_b^T G_b per example and group (B, g, K, O), False), or its transpose
        (G_b^T A_b, (B, g, O, K), True) when K > O: TF's CPU batch matmul is faster with
        the longer operand on the right (so for the keras.io convnet's second layer)."""
        if self.a.shape[-1] > self.g.shape[-1]:
            return tf.matmul(tf.linalg.matrix_transpose(self.g), self.a), True
        return tf.matmul(self.a, self.g, transpose_a=True), False

    def _as_kernel(self, products: tf.Tensor) -> tf.Tensor:
        """(N, g, K, O) from `_products`' layout."""
        return tf.linalg.matrix_transpose(products) if self._products[1] else products

    @functools.cached_property
    def per_example(self) -> tf.Tensor:
        return self.to_variable(self._as_kernel(self._products[0]))

    def sq_norms(self) -> tf.Tensor:
        if not self.ghost:
            return tf.reduce_sum(tf.square(self._products[0]), axis=[1, 2, 3])
        inputs = tf.einsum('bgtk,bgsk->bgts', self.a, self.a)
        outputs = tf.einsum('bgto,bgso->bgts', self.g, self.g)
        return tf.reduce_sum(inputs * outputs, axis=[1, 2, 3])

    def weighted_sum(self, weights: tf.Tensor) -> tf.Tensor:
        if not self.ghost:
            summed = tf.tensordot(weights, self._products[0], 1)[None]
            return self.to_variable(self._as_kernel(summed))[0]
        scale = weights[:, None, None, None]
        a, g = ((self.a * scale, self.g) if self.a.shape[-1] <= self.g.shape[-1]
                else (self.a, self.g * scale))  # scale the narrower operand
        summed = tf.matmul(_by_group(a), _by_group(g), transpose_a=True)  # (g, K, O)
        return self.to_variable(summed[None])[0]


@dataclasses.dataclass
class Rows:
    """An embedding table's per-example gradient from ids (B, T) and G (B, T, d)."""

    variable: tf.Variable
    ids: tf.Tensor
    g: tf.Tensor

    @property
    def ghost(self) -> bool:
        return rows_ghost(self.ids.shape[1], self.variable.shape.num_elements())

    @functools.cached_property
    def per_example(self) -> tf.Tensor:
        vocabulary = self.variable.shape[0]
        batch = tf.shape(self.ids)[0]
        rows = tf.range(batch)[:, None] * vocabulary + self.ids
        flat = tf.math.unsorted_segment_sum(tf.reshape(self.g, [-1, self.g.shape[-1]]),
                                            tf.reshape(rows, [-1]), batch * vocabulary)
        return tf.reshape(flat, [batch, vocabulary, self.g.shape[-1]])

    def sq_norms(self) -> tf.Tensor:
        if not self.ghost:
            return Explicit(self.variable, self.per_example).sq_norms()
        same = tf.cast(tf.equal(self.ids[:, :, None], self.ids[:, None, :]), self.g.dtype)
        return tf.reduce_sum(same * tf.einsum('btd,bsd->bts', self.g, self.g), axis=[1, 2])

    def weighted_sum(self, weights: tf.Tensor) -> tf.Tensor:
        if not self.ghost:
            return tf.tensordot(weights, self.per_example, 1)
        weighted = tf.reshape(self.g * weights[:, None, None], [-1, self.g.shape[-1]])
        return tf.math.unsorted_segment_sum(weighted, tf.reshape(self.ids, [-1]),
                                            self.variable.shape[0])


def grouped_kernel(shape: tf.TensorShape) -> ToVariable:
    """(N, g, K, O_g) -> (N, *shape) for kernels (..., c_in/g, g O_g): output channel j O_g + o."""
    def to_variable(grads: tf.Tensor) -> tf.Tensor:
        return tf.reshape(tf.transpose(grads, [0, 2, 1, 3]), [-1, *shape])
    return to_variable


Form = Union[Explicit, Linear, Rows]


def affine(kernel: tf.Variable, bias: Optional[tf.Variable], a: tf.Tensor, g: tf.Tensor,
           to_variable: ToVariable, offsets: int = 1) -> List[Form]:
    """Forms of Z = A W + bias per group: `Linear` for the kernel, the sum of G over T for the bias."""
    found: List[Form] = [Linear(kernel, a, g, to_variable, offsets)]
    if bias is not None:
        found.append(Explicit(bias, tf.reshape(tf.reduce_sum(g, axis=2), [-1, *bias.shape])))
    return found


def static_positions(tensor: tf.Tensor) -> int:
    """T = the product of the middle axes of (B, ..., K) when static, else -1 (for reshapes:
    a static T keeps the ghost/explicit choice available inside `tf.function`, whose batch
    axis is unknown)."""
    middle = tensor.shape[1:-1]
    return math.prod(middle) if middle.is_fully_defined() else -1


def rows(tensor: tf.Tensor) -> tf.Tensor:
    """(B, ..., K) -> (B, 1, T, K): every position of an example as a row of A_b (or G_b)."""
    return tf.reshape(tensor, [tf.shape(tensor)[0], 1, static_positions(tensor), tensor.shape[-1]])
