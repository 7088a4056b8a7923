"""Cost of confining the local TFF worker: round trips of N MB, confined (relay) vs bare.

The confined worker (`tfpriv.federated.worker`: private network namespace, Unix-socket
relay) adds one user-space copy of every byte in each direction; this measures what that
costs on a TFF computation that sends an N MB float32 tensor to the worker and gets it back,
against the bare `worker_binary` on all interfaces that TFF itself runs.

    python benchmarks/worker_relay.py --sizes-mb 1,16,64 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Dict, List, Sequence

import numpy as np


def _timings(isolate: bool, sizes_mb: Sequence[int], repeats: int) -> Dict[int, float]:
    """Median seconds of one round trip of each size, through one worker."""
    import tensorflow as tf
    import tensorflow_federated as tff
    from tfpriv.federated import runtime
    worker = runtime.start_worker(isolate=isolate)
    try:
        context = runtime.create_context([worker.target], 60.0, [worker])
        tff.framework.get_context_stack().set_default_context(context)
        medians = {}
        for size in sizes_mb:
            n = size * (1 << 20) // 4

            @tff.tensorflow.computation(tff.TensorType(np.float32, [n]))
            def echo(x):
                return tf.identity(x)

            value = np.arange(n, dtype=np.float32)
            echo(value)  # warm up: the computation is compiled and cached by the worker
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                out = echo(value)
                seconds.append(time.perf_counter() - start)
            assert np.array_equal(out, value)
            medians[size] = statistics.median(seconds)
        return medians
    finally:
        runtime.stop_worker(worker)


def main(argv: Sequence[str] | None = None) -> List[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes-mb', default='1,16,64')
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes_mb.split(',')]
    bare = _timings(False, sizes, args.repeats)
    confined = _timings(True, sizes, args.repeats)
    rows = ['| MB each way | bare worker_binary (s) | confined, relayed (s) | ratio |', '|---|---|---|---|']
    rows += [f'| {s} | {bare[s]:.3f} | {confined[s]:.3f} | {confined[s] / bare[s]:.2f}x |'
             for s in sizes]
    print('\n'.join(rows))
    return rows


if __name__ == '__main__':
    main()
