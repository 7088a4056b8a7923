"""Per-example gradients by layer interception: clipped gradient sums in one backward pass.

    grads, y_pred = clipped_sum(model, example_loss, x, y, l2_norm_clip)
    reasons = problems(model)   # empty when `model` can take this path

`registry` intercepts the calls of every registered layer during one
training-mode forward pass and records taps; `forms` turns the taps and the
backward signals into per-example norms (ghost or explicit per layer) and the
clipped sum; `engine` runs the stages; `eligibility` says which models are
sound on this path. Layer families: `dense`, `embedding`, `conv`
(Conv1D/2D, DepthwiseConv2D, SeparableConv2D), `normalization` (LayerNorm,
GroupNorm), `rnn` (SimpleRNN, LSTM, GRU; Bidirectional through them).
"""

from tfpriv.dp.grad_sample import conv, dense, embedding, normalization, rnn  # noqa: F401
from tfpriv.dp.grad_sample.eligibility import problems
from tfpriv.dp.grad_sample.engine import clipped_sum, per_example_norms

__all__ = ['clipped_sum', 'per_example_norms', 'problems']
