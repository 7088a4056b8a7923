"""Augmentation multiplicity for DP-SGD (De et al. 2022, "Unlocking High-Accuracy Differentially
Private Image Classification through Scale", sec. 3.1).

Each example's gradient is the mean of the gradients of K augmented views of that
example, and only then clipped:

    g_i = clip_C( (1/K) sum_k grad L(f(A_k(x_i)), y_i) )

One example still enters the sum of clipped gradients through exactly one term
of norm at most C, so the sensitivity, the noise N(0, σ²C²) and ε are those of
plain DP-SGD (the K views are *not* K examples). The views here are random
translations by up to `max_shift` pixels (zero fill), the augmentation that
suits MNIST (no flips: they change digits).

`AugmultModel` is a `DPSGDModel` on the `vectorized` clipping path only: it
overrides the chunk sum that path maps over (virtual steps and sample weights
work as in `tfpriv.dp.sgd`). The `fast` (ghost-norm)
path computes norms of single-input gradients and cannot average views before
clipping, and `microbatch` is not wired, so both are refused.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

import tensorflow as tf

from tfpriv import checks
from tfpriv.dp.sgd import DPSGDModel

Augment = Callable[[tf.Tensor, int], tf.Tensor]  # (B, H, W, C), K -> (B, K, H, W, C)


def random_shifts(max_shift: int) -> Augment:
    """K views of each image, each translated by independent integers in [-max_shift, max_shift]."""
    checks.integer('max_shift', max_shift, minimum=0)

    def augment(images: tf.Tensor, views: int) -> tf.Tensor:
        batch = tf.shape(images)[0]
        tiled = tf.repeat(images, views, axis=0)
        shifts = tf.cast(tf.random.uniform([batch * views, 2], -max_shift, max_shift + 1,
                                           dtype=tf.int32), tf.float32)
        ones, zeros = tf.ones([batch * views, 1]), tf.zeros([batch * views, 1])
        # Projective map output (x, y) <- input (x - dx, y - dy): rows [1, 0, -dx, 0, 1, -dy, 0, 0].
        transforms = tf.concat([ones, zeros, -shifts[:, :1], zeros, ones, -shifts[:, 1:],
                                zeros, zeros], axis=1)
        moved = tf.raw_ops.ImageProjectiveTransformV3(
            images=tiled, transforms=transforms, output_shape=tf.shape(images)[1:3],
            fill_value=0.0, interpolation='NEAREST', fill_mode='CONSTANT')
        return tf.reshape(moved, tf.concat([[batch, views], tf.shape(images)[1:]], axis=0))

    return augment


class AugmultModel(DPSGDModel):
    """DP-SGD with K augmentations per example averaged before clipping (see module doc)."""

    def __init__(self, model: tf.keras.Model, *, augmult: int, augment: Optional[Augment] = None,
                 **kwargs):
        if kwargs.get('clipping') != 'vectorized':
            raise ValueError("augmentation multiplicity needs clipping='vectorized' (the fast path "
                             'clips single-input gradients, before views could be averaged), got '
                             f"clipping={kwargs.get('clipping')!r}")
        super().__init__(model, **kwargs)
        self.augmult = checks.integer('augmult', augmult, minimum=1)
        self.augment = augment or random_shifts(2)

    @classmethod
    def wrap(cls, model: DPSGDModel, augmult: int, augment: Optional[Augment] = None) -> 'AugmultModel':
        """An `AugmultModel` sharing `model`'s user model (layers, weights) and DP settings."""
        return cls(model.inner, l2_norm_clip=model.l2_norm_clip,
                   noise_multiplier=model.noise_multiplier,
                   expected_batch_size=model.expected_batch_size, clipping=model.clipping,
                   virtual_batch_size=model.virtual_batch_size, augmult=augmult,
                   augment=augment, name=model.name)

    def _views_gradient(self, views: tf.Tensor, targets: Any) -> List[tf.Tensor]:
        """The mean gradient over one example's K views (K, ...), scaled to L2 norm at most C."""
        labels = tf.nest.map_structure(
            lambda t: tf.repeat(t[None], tf.shape(views)[0], axis=0), targets)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(self._example_loss(labels, self(views, training=True)))
        mean = tape.gradient(loss, self.trainable_variables,
                             unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return tf.clip_by_global_norm(mean, self.l2_norm_clip)[0]  # g C / max(||g||, C)

    def _vectorized_chunk(self, x, targets) -> List[tf.Tensor]:
        """Sum over a chunk of clipped view-averaged gradients (views drawn outside the map)."""
        per_example = tf.vectorized_map(lambda example: self._views_gradient(*example),
                                        (self.augment(x, self.augmult), targets))
        return [tf.reduce_sum(g, axis=0) for g in per_example]
