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

from tfpriv.dp.grad_sample.conv import patches


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
