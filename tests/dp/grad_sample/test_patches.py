"""`conv.patches` (shifted strided views) equals TensorFlow's own `tf.image.extract_patches`.

The reference is TF's im2col op, which pads 'same' the way its convolutions do; the
grid covers odd and even sizes and kernels (asymmetric 'same' padding), strides,
dilations, 1-D inputs and an input whose spatial size is unknown until run time.
Exact equality: both only copy values.
"""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from tfpriv.dp.grad_sample.conv import _kernel_forms, patches


def _reference(x, kernel, strides, dilation, padding):
    fields = tf.image.extract_patches(x, sizes=[1, *kernel, 1], strides=[1, *strides, 1],
                                      rates=[1, *dilation, 1], padding=padding.upper())
    return tf.reshape(fields, [x.shape[0], -1, fields.shape[-1]])


GRID = [(size, kernel, stride, rate, padding)
        for size, kernel, stride, rate, padding in itertools.product(
            [(7, 6), (8, 9)], [(3, 3), (2, 4), (1, 1)], [(1, 1), (2, 3)], [(1, 1), (2, 1)],
            ['valid', 'same'])
        if stride == (1, 1) or rate == (1, 1)]


@pytest.mark.parametrize('size,kernel,stride,rate,padding', GRID)
def test_patches_equal_extract_patches(size, kernel, stride, rate, padding):
    x = tf.constant(np.random.default_rng(0).normal(size=(2, *size, 3)), tf.float32)
    np.testing.assert_array_equal(patches(x, kernel, stride, rate, padding),
                                  _reference(x, kernel, stride, rate, padding))


@pytest.mark.parametrize('padding', ['valid', 'same'])
def test_one_dimensional_and_unknown_length(padding):
    x = tf.constant(np.random.default_rng(1).normal(size=(3, 11, 4)), tf.float32)
    want = _reference(x[:, None], (1, 3), (1, 2), (1, 1), padding)
    traced = tf.function(lambda t: patches(t, (3,), (2,), (1,), padding),
                         input_signature=[tf.TensorSpec([None, None, 4], tf.float32)])
    np.testing.assert_array_equal(patches(x, (3,), (2,), (1,), padding), want)
    np.testing.assert_array_equal(traced(x), want)


@pytest.mark.parametrize('padding', ['valid', 'same'])
def test_unit_stride_views_with_unknown_spatial_size(padding):
    """The shifted-views path when height and width are unknown until run time (sizes then
    come from tf.shape): the same patches as extract_patches, also dilated."""
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 8, 7, 3)), tf.float32)
    traced = tf.function(lambda t: patches(t, (3, 2), (1, 1), (2, 1), padding),
                         input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    np.testing.assert_array_equal(traced(x), _reference(x, (3, 2), (1, 1), (2, 1), padding))


@pytest.mark.parametrize('strides,positions', [((1, 1), 20), ((2, 3), 8)])
def test_positions_stay_static_inside_tf_function(strides, positions):
    """Keras traces the train step with an unknown batch size: the number of positions T must
    stay static there, or every convolution falls back to explicit products (T unknown)."""
    seen = []

    @tf.function(input_signature=[tf.TensorSpec([None, 7, 6, 3], tf.float32)])
    def traced(x):
        out = patches(x, (3, 3), strides, (1, 1), 'valid' if strides == (1, 1) else 'same')
        seen.append(out.shape.as_list())
        return out

    traced(tf.zeros([2, 7, 6, 3]))
    assert seen == [[None, positions, 27]]


def test_a_strided_convolution_keeps_its_ghost_norm_inside_tf_function():
    layer = tf.keras.layers.Conv2D(16, 3, strides=2, padding='same')
    layer.build((None, 4, 4, 16))  # T = 4, K = 144, O = 16: ghost (test_layers' 'conv2d_ghost')
    chosen = []

    @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 16], tf.float32),
                                  tf.TensorSpec([None, 2, 2, 16], tf.float32)])
    def traced(x, g):
        kernel_form = _kernel_forms(layer, x, g, 'same')[0]
        chosen.append((kernel_form.a.shape[2], kernel_form.ghost))
        return kernel_form.sq_norms()

    traced(tf.zeros([3, 4, 4, 16]), tf.zeros([3, 2, 2, 16]))
    assert chosen == [(4, True)]
