"""The ghost-or-explicit rules of `forms.py` and the static shapes they read (issue #20).

Ghost and explicit norms are equal in value (test_layers.py checks both against brute force),
so a wrong choice shows only in the cost; these tests pin the choice itself to the rules
written out by hand (Bu et al. 2022, arXiv:2205.10683, with the book-keeping weighted sum of
Bu et al. 2023, arXiv:2210.00038):

- a K x O kernel over T positions: ghost iff T^2 (K + O) < 0.45 T K O + 2 K O
  [+ 8 K O when K O > 2^15] or K O > 2^18 (the cost model of `forms.linear_ghost`);
- an embedding table of V x d entries over T ids: ghost iff 2 T^2 < V d;
- T unknown: explicit.

The embedding rule is an exact integer comparison, so its boundary cases (equality) are
exact; the kernel rule's cases sit on either side of each of its terms.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfpriv.dp.grad_sample import forms


def _linear_rule(positions, inputs, outputs):
    """The rule of the module docstring, written out (the reference)."""
    if positions is None:
        return False
    size = inputs * outputs
    spill = 8 * size if size > 2 ** 15 else 0
    return positions ** 2 * (inputs + outputs) < 0.45 * positions * size + 2 * size + spill \
        or size > 2 ** 18


@pytest.mark.parametrize('positions,inputs,outputs,ghost', [
    (1, 4, 4, True),          # 8 < 39.2
    (8, 4, 4, False),         # 512 > 89.6
    (50, 128, 256, False),    # K O = 2^15, no spill: 960000 > 802816
    (50, 128, 257, True),     # K O > 2^15, spill: 962500 < 1069120
    (512, 512, 512, False),   # K O = 2^18: at the memory cap, not over it: 2.7e8 > 6.3e7
    (512, 512, 513, True)])   # over the cap: ghost although explicit is cheaper
def test_linear_rule_at_its_boundaries(positions, inputs, outputs, ghost):
    assert _linear_rule(positions, inputs, outputs) is ghost  # the cases mean what they say
    assert forms.linear_ghost(positions, inputs, outputs) is ghost


@pytest.mark.parametrize('positions,size,ghost', [
    (None, 10 ** 6, False),   # T unknown
    (4, 33, True),            # 2 T^2 = 32 < 33
    (4, 32, False),           # 2 T^2 = 32 = V d: explicit
    (1, 3, True),
    (7, 15, False)])          # 'embedding_explicit' of test_layers.py
def test_embedding_rule_is_2_t_squared_below_v_d(positions, size, ghost):
    assert forms.rows_ghost(positions, size) is ghost


@pytest.mark.parametrize('positions,inputs,outputs,groups', [
    (3, 16, 16, 1),     # 288 < 857.6: ghost ('dense_sequence_ghost')
    (12, 3, 2, 1),      # 720 > 44.4: explicit ('dense_sequence_explicit')
    (4, 144, 16, 2),    # per group: 2560 < 8755.2: ghost ('conv2d_groups_ghost')
    (6, 4, 16, 1)])     # 720 > 300.8: explicit (an LSTM's recurrent kernel)
def test_linear_form_reads_t_k_o_from_its_operands(positions, inputs, outputs, groups):
    a = tf.zeros([2, groups, positions, inputs])
    g = tf.zeros([2, groups, positions, outputs])
    kernel = tf.Variable(tf.zeros([inputs * groups, outputs * groups]))
    form = forms.Linear(kernel, a, g, forms.grouped_kernel(kernel.shape))
    assert form.ghost is _linear_rule(positions, inputs, outputs)


@pytest.mark.parametrize('vocabulary,width,positions', [(50, 8, 4), (5, 3, 7)])
def test_rows_form_reads_t_and_the_table_size(vocabulary, width, positions):
    table = tf.Variable(tf.zeros([vocabulary, width]))
    form = forms.Rows(table, tf.zeros([2, positions], tf.int32), tf.zeros([2, positions, width]))
    assert form.ghost is (2 * positions ** 2 < vocabulary * width)


@pytest.mark.parametrize('shape,positions', [([None, 3, 4, 5], 12), ([None, None, 5], None)])
def test_rows_keeps_a_known_position_count_in_a_graph(shape, positions):
    """Inside a compiled step the batch size is unknown: T must still be static when the
    middle axes are, or every layer would fall back to explicit norms (T unknown)."""
    seen = []

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def flatten(tensor):
        out = forms.rows(tensor)
        seen.append(out.shape.as_list())
        return out

    x = np.random.default_rng(3).normal(size=[2] + [s or 3 for s in shape[1:]]).astype(np.float32)
    np.testing.assert_array_equal(flatten(x), x.reshape(2, 1, -1, x.shape[-1]))
    assert seen == [[None, 1, positions, 5]]


@pytest.mark.parametrize('positions,inputs,outputs', [(3, 16, 16), (12, 3, 2), (6, 4, 16)])
def test_linear_form_takes_the_path_its_rule_names(positions, inputs, outputs):
    """Norms and weighted sum equal the einsum reference, and only the explicit path
    materialises A_b^T G_b (`_products`, cached on the form): a swapped branch gives the same
    values at another cost, which only this check sees."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=(4, 1, positions, inputs)).astype(np.float32)
    g = rng.normal(size=(4, 1, positions, outputs)).astype(np.float32)
    weights = rng.uniform(0.2, 1.0, 4).astype(np.float32)
    kernel = tf.Variable(tf.zeros([inputs, outputs]))
    form = forms.Linear(kernel, tf.constant(a), tf.constant(g), forms.grouped_kernel(kernel.shape))
    per_example = np.einsum('btk,bto->bko', a[:, 0], g[:, 0])
    np.testing.assert_allclose(form.sq_norms(), (per_example ** 2).sum(axis=(1, 2)), rtol=1e-4)
    np.testing.assert_allclose(form.weighted_sum(tf.constant(weights)),
                               np.tensordot(weights, per_example, 1), rtol=1e-4, atol=1e-5)
    assert ('_products' in vars(form)) is not form.ghost


@pytest.mark.parametrize('vocabulary,width,positions', [(50, 8, 4), (5, 3, 7)])
def test_rows_form_takes_the_path_its_rule_names(vocabulary, width, positions):
    """The same for an embedding table: only the explicit path builds the (B, V, d) rows."""
    rng = np.random.default_rng(6)
    ids = rng.integers(0, vocabulary, (4, positions)).astype(np.int32)
    ids[:, 1] = ids[:, 0]  # a repeated id: the cross terms of the ghost norm
    g = rng.normal(size=(4, positions, width)).astype(np.float32)
    weights = rng.uniform(0.2, 1.0, 4).astype(np.float32)
    per_example = np.zeros((4, vocabulary, width), np.float32)
    for b in range(4):
        np.add.at(per_example[b], ids[b], g[b])
    form = forms.Rows(tf.Variable(tf.zeros([vocabulary, width])), tf.constant(ids), tf.constant(g))
    np.testing.assert_allclose(form.sq_norms(), (per_example ** 2).sum(axis=(1, 2)), rtol=1e-4)
    np.testing.assert_allclose(form.weighted_sum(tf.constant(weights)),
                               np.tensordot(weights, per_example, 1), rtol=1e-4, atol=1e-5)
    assert ('per_example' in vars(form)) is not form.ghost
