"""Brute-force reference: one GradientTape per example (not the code under test)."""

import numpy as np
import tensorflow as tf


def squared_error(y, y_pred):
    """Per-example loss 0.5 ||y_pred_b - y_b||^2, (B,)."""
    return 0.5 * tf.reduce_sum(tf.reshape(tf.square(y_pred - y), [tf.shape(y)[0], -1]), axis=1)


def per_example_gradients(model, example_loss, x, y):
    """[per variable: (B, *shape)] by a loop over examples, each with its own tape."""
    grads = []
    for b in range(len(y)):
        with tf.GradientTape() as tape:
            loss = example_loss(y[b:b + 1], model(x[b:b + 1], training=True))[0]
        grads.append([tf.convert_to_tensor(g).numpy() for g in tape.gradient(
            loss, model.trainable_variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)])
    return [np.stack(per_variable) for per_variable in zip(*grads)]


def norms(grads):
    return np.sqrt(sum(np.sum(g.reshape(len(g), -1).astype(np.float64) ** 2, axis=1) for g in grads))


def clipped_sum(grads, l2_norm_clip):
    weights = l2_norm_clip / np.maximum(norms(grads), l2_norm_clip)
    return [np.tensordot(weights, g, 1) for g in grads]
