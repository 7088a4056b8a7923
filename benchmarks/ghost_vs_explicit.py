"""Ghost norm or explicit per-example gradient: which is faster per layer shape (issue #15).

    PYTHONPATH=. .venv/bin/python benchmarks/ghost_vs_explicit.py [--batch-size 256] [--threads 2]

For each kernel shape (T positions, K inputs, O outputs; the zoo's layers and some
around the boundary) it times `tfpriv.dp.grad_sample.forms.Linear` both ways on random
float32 tensors, in one process: squared norms and the clip-weighted sum (what the
engine asks of a form), best of 25 after 2 warm-up calls, under `tf.function`. It
prints both times, the faster mode and what `forms.linear_ghost` picks; the constant
s of `linear_ghost`'s cost model were read off this table.
"""

import argparse
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # pylint: disable=wrong-import-position
import tensorflow as tf  # pylint: disable=wrong-import-position

from tfpriv.dp.grad_sample import forms  # pylint: disable=wrong-import-position

SHAPES = ((1, 784, 128), (4, 320, 64), (8, 448, 64), (12, 320, 64), (28, 32, 96), (28, 32, 128),
          (28, 32, 256), (28, 64, 256), (121, 288, 64), (676, 9, 32), (16, 512, 512),
          (64, 256, 256), (196, 800, 64))


def best_ms(fn, repeats: int = 25) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def timed(shape, batch: int, ghost: bool) -> float:
    """ms for sq_norms + weighted_sum of one form with the ghost/explicit choice forced."""
    positions, inputs, outputs = shape
    rng = np.random.default_rng(0)
    a = tf.constant(rng.random((batch, 1, positions, inputs), np.float32))
    g = tf.constant(rng.random((batch, 1, positions, outputs), np.float32))
    weights = tf.constant(rng.random(batch, np.float32))
    variable = tf.Variable(tf.zeros([inputs, outputs]))

    class Forced(forms.Linear):
        @property
        def ghost(self) -> bool:
            return ghost

    @tf.function
    def both():
        form = Forced(variable, a, g, lambda grads: tf.reshape(grads, [-1, inputs, outputs]))
        return form.sq_norms(), form.weighted_sum(weights)

    return best_ms(both)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    print(f'batch {args.batch_size}, {args.threads} intra-op threads; ms, best of 25')
    print(f'{"T":>4} {"K":>4} {"O":>4} {"ghost":>8} {"explicit":>8} {"faster":>8} {"picked":>8}')
    for shape in SHAPES:
        ghost, explicit = (timed(shape, args.batch_size, mode) for mode in (True, False))
        picked = 'ghost' if forms.linear_ghost(*shape) else 'explicit'
        faster = 'ghost' if ghost < explicit else 'explicit'
        print(f'{shape[0]:4d} {shape[1]:4d} {shape[2]:4d} {ghost:8.2f} {explicit:8.2f} '
              f'{faster:>8} {picked:>8}', flush=True)


if __name__ == '__main__':
    main()
