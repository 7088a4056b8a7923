"""`smpc.conv.Conv2DSpec` on the ring: im2col convolution with TensorFlow's padding rules.

Reference: a direct sum written here, out[b, i, j, f] = Σ x[b, i sh + a, j sw + c, ch]
w[a, c, ch, f] over the input padded by amounts stated per case (TensorFlow's 'same' rule:
total padding max((out - 1) s + k - size, 0), the extra unit at the end, e.g. 6 rows with
k = 2, s = 1 get (0, 1)). Small integers, so the uint64 ring arithmetic is exact and the
result, read as int64, must equal the reference exactly.
"""

import re

import numpy as np
import pytest

from tfpriv.crypto.smpc.conv import Conv2DSpec


def _direct(x, w, strides, pads):
    """The convolution of x (B, H, W, C) padded by pads ((top, bottom), (left, right))."""
    x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    (sh, sw), (kh, kw) = strides, w.shape[:2]
    out = np.zeros((x.shape[0], (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1,
                    w.shape[3]), np.int64)
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            patch = x[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
            out[:, i, j, :] = np.einsum('bacd,acdf->bf', patch, w)
    return out


def _ring_conv(spec, x, w):
    return spec(x.astype(np.uint64), w.astype(np.uint64)).view(np.int64)


@pytest.mark.parametrize('shape,kernel,strides,padding,pads', [
    ((3, 3), (3, 3), (1, 1), 'valid', ((0, 0), (0, 0))),   # kernel = input: one output
    ((6, 6), (2, 2), (1, 1), 'same', ((0, 1), (0, 1))),    # padding only after
    ((7, 6), (3, 2), (2, 1), 'valid', ((0, 0), (0, 0))),   # strides differ per axis
    ((7, 6), (3, 2), (2, 1), 'same', ((1, 1), (0, 1))),    # out 4 x 6: totals 2 and 1
    ((5, 5), (3, 3), (2, 2), 'same', ((1, 1), (1, 1))),
])
def test_conv2d_equals_the_direct_sum(shape, kernel, strides, padding, pads):
    rng = np.random.default_rng(len(shape) + sum(shape) + sum(strides))
    x = rng.integers(-9, 10, size=(2,) + shape + (3,))
    w = rng.integers(-9, 10, size=kernel + (3, 4))
    want = _direct(x, w, strides, pads)
    spec = Conv2DSpec(strides, padding)
    assert spec.output_shape(x.shape, w.shape) == want.shape
    np.testing.assert_array_equal(_ring_conv(spec, x, w), want)


def test_bad_arguments_are_named_with_what_is_allowed():
    x, w = np.ones((1, 4, 4, 2), np.uint64), np.ones((5, 2, 2, 1), np.uint64)
    with pytest.raises(ValueError, match=r'^a kernel of 5 does not fit an input of 4 with '
                                         r'valid padding$'):
        Conv2DSpec()(x, w)
    for strides in ((0, 1), (1, -2), (1, 1, 1)):
        with pytest.raises(ValueError, match=rf'^strides must be two positive ints, got '
                                             rf'{re.escape(str(strides))}$'):
            Conv2DSpec(strides)
    with pytest.raises(ValueError, match=r"^conv2d needs an input \(batch, height, width, "
                                         r"channels\) and a kernel \(height, width, "
                                         r"in_channels, filters\), got \(4, 4, 2\) and "
                                         r"\(2, 2, 2, 1\)$"):
        Conv2DSpec().output_shape((4, 4, 2), (2, 2, 2, 1))
    with pytest.raises(ValueError, match=r'^the input has 2 channels but the kernel expects 3$'):
        Conv2DSpec().output_shape((1, 4, 4, 2), (2, 2, 3, 1))

