"""Augmentation multiplicity (`tfpriv.dp.augmult`): the arguments K and max_shift, the shift
distribution with its zero fill, labels of any shape repeated per view, training mode, and
`wrap` keeping every setting.

References: shifted images written in NumPy here (zero fill), a two-sided chi-square test of the
25 shifts (SciPy quantiles), the sparse-label run (checked against a brute force in
test_augmult.py) for one-hot labels, and a model whose layer scales by 3 in training only against
one that always does.
"""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tests.dp import test_augmult as base
from tfpriv.dp.augmult import AugmultModel, random_shifts
from tfpriv.dp.keras import make_private

SHIFTS = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]


def shifted(image, dy, dx):
    """image (H, W, C) moved down dy and right dx pixels, zeros shifted in."""
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def shift_counts(augment, views=200):
    """Which of the 25 shifts each view of 4 full-frame random 8x8 images is (exactly one)."""
    tf.random.set_seed(5)
    images = np.random.default_rng(5).uniform(0.1, 1, (4, 8, 8, 1)).astype(np.float32)
    out = augment(tf.constant(images), views).numpy()
    counts = np.zeros(len(SHIFTS))
    for b in range(4):
        for view in out[b]:
            found = [i for i, s in enumerate(SHIFTS) if np.array_equal(view, shifted(images[b], *s))]
            assert len(found) == 1, 'a view is not a zero-filled shift by at most 2 pixels'
            counts[found[0]] += 1
    return counts


def test_every_shift_up_to_max_shift_is_equally_likely():
    """800 views over 25 shifts (32 expected each): the chi-square statistic (24 df) lies
    between its 1e-6 and 1 - 1e-6 quantiles (false alarm 2e-6)."""
    counts = shift_counts(random_shifts(2))
    statistic = float(((counts - counts.mean())**2 / counts.mean()).sum())
    assert stats.chi2.ppf(1e-6, 24) < statistic < stats.chi2.ppf(1 - 1e-6, 24)


def test_default_augmentation_shifts_by_at_most_2_pixels():
    model = AugmultModel(base._model(), augmult=2, l2_norm_clip=1.0, noise_multiplier=1.0,
                         expected_batch_size=4, clipping='vectorized')
    assert shift_counts(model.augment, views=50).min() > 0


def test_max_shift_0_is_the_identity_and_a_negative_one_is_refused():
    images = np.random.default_rng(6).uniform(size=(2, 5, 5, 1)).astype(np.float32)
    views = random_shifts(0)(tf.constant(images), 3).numpy()
    assert np.array_equal(views, np.repeat(images[:, None], 3, axis=1))
    with pytest.raises(ValueError, match='^max_shift must be >= 0, got -1$'):
        random_shifts(-1)


def _private(**kwargs):
    return make_private(base._model(), num_examples=base.N, batch_size=base.N, l2_norm_clip=0.05,
                        noise_multiplier=0.0, clipping='vectorized', **kwargs)


@pytest.mark.parametrize('augmult, accepted', [(1, True), (0, False), (-1, False)])
def test_k_is_at_least_1(augmult, accepted):
    private = _private()
    if accepted:
        assert AugmultModel.wrap(private.model, augmult).augmult == 1
    else:
        with pytest.raises(ValueError, match=f'^augmult must be >= 1, got {augmult}$'):
            AugmultModel.wrap(private.model, augmult)


def test_wrap_keeps_every_setting_of_the_private_model():
    model = _private(virtual_batch_size=2).model
    wrapped = AugmultModel.wrap(model, 3)
    for name in ('l2_norm_clip', 'noise_multiplier', 'expected_batch_size', 'clipping',
                 'virtual_batch_size', 'name'):
        assert getattr(wrapped, name) == getattr(model, name), name
    assert wrapped.inner is model.inner and wrapped.virtual_batch_size == 2


def test_refusal_names_the_clipping_given():
    private = make_private(base._model(), num_examples=base.N, batch_size=base.N,
                           l2_norm_clip=1.0, noise_multiplier=1.0, clipping='fast')
    with pytest.raises(ValueError, match=(
            "^augmentation multiplicity needs clipping='vectorized' \\(the fast path clips "
            'single-input gradients, before views could be averaged\\), got '
            "clipping='fast'$")):
        AugmultModel.wrap(private.model, 2)


def _update(model, x, labels, loss):
    """The summed clipped gradient of one noiseless step (lr 1, see test_augmult.py)."""
    wrapped = AugmultModel.wrap(model, base.K, augment=base._rolls)
    wrapped.compile(optimizer=tf.keras.optimizers.SGD(1.0), loss=loss)
    before = [w.numpy().copy() for w in wrapped.trainable_weights]
    wrapped.train_step((tf.constant(x), tf.constant(labels)))
    return [base.N * (b - w.numpy()) for b, w in zip(before, wrapped.trainable_weights)]


def test_one_hot_labels_give_the_update_of_sparse_labels():
    """Each example's label is repeated once per view whatever its shape: one-hot labels with
    categorical cross-entropy give the sparse-label update (rtol 1e-5, float32)."""
    x, y = base._data()
    sparse = _private()
    one_hot = _private(loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True))
    want = _update(sparse.model, x, y, sparse.loss)
    got = _update(one_hot.model, x, np.eye(3, dtype=np.float32)[y], one_hot.loss)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


class _TimesThree(tf.keras.layers.Layer):
    def __init__(self, always=False):
        super().__init__()
        self.always = always

    def call(self, inputs, training=None):
        return inputs * 3.0 if training or self.always else inputs


def _scaled_model(always):
    tf.keras.utils.set_random_seed(1)
    inputs = tf.keras.Input((6, 6, 1))
    x = _TimesThree(always)(tf.keras.layers.Conv2D(2, 3, activation='tanh')(inputs))
    return tf.keras.Model(inputs, tf.keras.layers.Dense(3)(tf.keras.layers.Flatten()(x)))


def test_views_run_the_model_in_training_mode():
    """A layer that scales by 3 in training only gives the update of one that always does."""
    x, y = base._data()
    updates = []
    for always in (False, True):
        private = make_private(_scaled_model(always), num_examples=base.N, batch_size=base.N,
                               l2_norm_clip=100.0, noise_multiplier=0.0, clipping='vectorized')
        updates.append(_update(private.model, x, y, private.loss))
    for a, b in zip(*updates):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


class _Unused(tf.keras.layers.Layer):
    """Passes its input through; its weight never reaches the loss."""

    def build(self, input_shape):
        self.unused = self.add_weight(name='unused', shape=(2,), initializer='ones')

    def call(self, inputs):
        return inputs


def test_a_weight_outside_the_loss_gets_a_zero_update():
    """Its gradient is unconnected (zero, not None): the step runs, leaves that weight as it is,
    and gives the other weights the update of the same model without it (rtol 1e-5)."""
    x, y = base._data()
    updates = []
    for extra in (False, True):
        tf.keras.utils.set_random_seed(1)
        inputs = tf.keras.Input((6, 6, 1))
        h = tf.keras.layers.Flatten()(tf.keras.layers.Conv2D(2, 3, activation='tanh')(inputs))
        outputs = tf.keras.layers.Dense(3)(h)
        model = tf.keras.Model(inputs, _Unused()(outputs) if extra else outputs)
        private = make_private(model, num_examples=base.N, batch_size=base.N, l2_norm_clip=0.05,
                               noise_multiplier=0.0, clipping='vectorized')
        updates.append(_update(private.model, x, y, private.loss))
    assert len(updates[1]) == 5 and np.array_equal(updates[1][4], np.zeros(2))
    for a, b in zip(updates[0], updates[1][:4]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)
