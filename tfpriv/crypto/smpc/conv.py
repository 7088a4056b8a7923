"""2-D convolution over Z_2^64 by im2col, with Keras's (TensorFlow's) padding rules.

conv2d(x, w) for x of shape (B, H, W, C) (NHWC) and a Keras kernel w of shape
(KH, KW, C, F) is the matrix product of the patch matrix of x, one row
(kh, kw, c) per output pixel, with w reshaped to (KH KW C, F). Both steps are
linear in x and in w separately, so the map is bilinear: it runs on shares
locally when one side is public and through a Beaver conv triple otherwise.
Zero padding is harmless on shares (shares of 0 are 0).

'same' padding follows TensorFlow: output size ceil(H / s), total padding
max((out - 1) s + k - H, 0), the smaller half before.
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

import numpy as np

from tfpriv.crypto.smpc.ring import matmul

PADDINGS = ('valid', 'same')


def _pads(size: int, kernel: int, stride: int, padding: str) -> Tuple[int, int, int]:
    """(pad_before, pad_after, output size) along one axis."""
    if padding == 'valid':
        if size < kernel:
            raise ValueError(f'a kernel of {kernel} does not fit an input of {size} '
                             f'with valid padding')
        return 0, 0, (size - kernel) // stride + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


@dataclasses.dataclass(frozen=True)
class Conv2DSpec:
    """Strides and padding of a convolution (channels last)."""

    strides: Tuple[int, int] = (1, 1)
    padding: str = 'valid'

    def __post_init__(self):
        if self.padding not in PADDINGS:
            raise ValueError(f'padding must be one of {PADDINGS}, got {self.padding!r}')
        if len(self.strides) != 2 or any(int(s) < 1 for s in self.strides):
            raise ValueError(f'strides must be two positive ints, got {self.strides}')

    def output_shape(self, input_shape: Tuple[int, ...], kernel_shape: Tuple[int, ...]):
        """(B, OH, OW, F) for an input (B, H, W, C) and a kernel (KH, KW, C, F)."""
        check_shapes(input_shape, kernel_shape)
        (_, _, oh), (_, _, ow) = (_pads(input_shape[1 + i], kernel_shape[i], self.strides[i],
                                        self.padding) for i in range(2))
        return input_shape[0], oh, ow, kernel_shape[3]

    def patches(self, x: np.ndarray, kernel_hw: Tuple[int, int]) -> np.ndarray:
        """The im2col matrix of x: shape (B OH OW, KH KW C), rows in (kh, kw, c) order."""
        pads = [_pads(x.shape[1 + i], kernel_hw[i], self.strides[i], self.padding)
                for i in range(2)]
        if any(p[0] or p[1] for p in pads):
            x = np.pad(x, ((0, 0), pads[0][:2], pads[1][:2], (0, 0)))
        windows = np.lib.stride_tricks.sliding_window_view(x, kernel_hw, axis=(1, 2))
        windows = windows[:, ::self.strides[0], ::self.strides[1]][:, :pads[0][2], :pads[1][2]]
        # (B, OH, OW, C, KH, KW) -> (B, OH, OW, KH, KW, C)
        columns = kernel_hw[0] * kernel_hw[1] * x.shape[3]
        return windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, columns)

    def __call__(self, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """conv2d(x, kernel) mod 2^64 for uint64 arrays."""
        out_shape = self.output_shape(x.shape, kernel.shape)
        cols = self.patches(x, kernel.shape[:2])
        return matmul(cols, kernel.reshape(-1, kernel.shape[3])).reshape(out_shape)


def check_shapes(input_shape: Tuple[int, ...], kernel_shape: Tuple[int, ...]) -> None:
    if len(input_shape) != 4 or len(kernel_shape) != 4:
        raise ValueError(f'conv2d needs an input (batch, height, width, channels) and a kernel '
                         f'(height, width, in_channels, filters), got {input_shape} and '
                         f'{kernel_shape}')
    if input_shape[3] != kernel_shape[2]:
        raise ValueError(f'the input has {input_shape[3]} channels but the kernel expects '
                         f'{kernel_shape[2]}')
