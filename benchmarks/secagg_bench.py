"""Secure aggregation backends side by side: one table row per backend, round size and setting.

    PYTHONPATH=. .venv/bin/python benchmarks/secagg_bench.py [--clients 10 100]
        [--weights 1000000] [--repeats 2] [--backends secagg] [--quiet]

Progress (each row, and each protocol stage's clients) goes to stderr unless
`--quiet`; stdout holds the figures and the table only.

For every round size (clients x 1M weights, float32 updates of a 999 x 1000
kernel and a 1000 bias) it measures, in one run and with the OS CSPRNG:
  * the baseline: a plain NumPy sum of the round's float32 updates (the
    aggregation the protocol replaces; best of 30);
  * each backend of `BACKENDS`: per-client time (median over the clients whose
    input counted of the time each spends computing its messages, each client's
    best of `--repeats`; wall-clock and thread CPU time, the latter insensitive
    to waiting for a shared CPU), server time (best of `--repeats`), bytes each
    client sends per weight (from the serialized messages), that over the
    quantized update, the dropouts it tolerates and what the server learns.
For secagg it also prints what bounds a client, best of 30: the encoding and
adding k + 1 masks (AES-256-CTR keystreams of 4 bytes per weight).
Client time excludes `UpdateSpec.flatten` (the interface's float64 concatenation,
common to every backend). Bytes per weight are over the clients whose input
counted; the quantized update is 4 bytes per weight at b = 32.
Rows for the other backends (shamir, smpc, rlwe) plug in as further entries of
`BACKENDS` returning `Row`s.
"""

import argparse
import dataclasses
import math
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from absl import logging

from tfpriv.crypto.masking import Dropouts, MaskingAggregator, Quantizer, primitives
from tfpriv.experiments.progress import StderrProgress
from tfpriv.progress import Progress, each, prefixed
from tfpriv.rng import Prg, RandomSource


@dataclasses.dataclass
class Row:
    backend: str
    clients: int
    setting: str
    client_ms: float
    client_cpu_ms: float
    server_ms: float
    bytes_per_weight: float
    over_quantized: float
    tolerated: str
    dropped: int
    server_learns: str


def model_like(rng: np.random.Generator) -> List[np.ndarray]:
    """A 1,000,000-weight update: a 999 x 1000 kernel and a 1000 bias, float32."""
    return [rng.normal(scale=0.05, size=(999, 1000)).astype(np.float32),
            rng.normal(scale=0.05, size=1000).astype(np.float32)]


def best_of(repeats: int, fn: Callable, clock: Callable[[], float] = time.perf_counter):
    best, result = math.inf, None
    for _ in range(repeats):
        start = clock()
        result = fn()
        best = min(best, clock() - start)
    return best, result


def masking_settings(n: int) -> Sequence[tuple]:
    """(neighbours k, threshold t, rounding): the complete graph for n <= 10; sparse Harary
    graphs with k = the even number >= log2 n (SecAgg+'s O(log n)) and, for n > 10,
    k = 2 ceil(log2 n); for n <= 10 the sparse graph with deterministic rounding too."""
    smallest = 2 * math.ceil(math.log2(n) / 2)
    settings = [(n - 1, (n - 1) // 2 + 1, 'stochastic')] if n <= 10 else []
    settings.append((smallest, smallest // 2 + 1, 'stochastic'))
    if n <= 10:
        settings.append((smallest, smallest // 2 + 1, 'deterministic'))
    else:
        settings.append((2 * math.ceil(math.log2(n)), math.ceil(math.log2(n)) + 1, 'stochastic'))
    return settings


def masking_round(updates, weights, setting: tuple, drop: int, repeats: int,
                  progress: Optional[Progress]):
    """Median over clients of each client's best wall and CPU time; best server time; stats."""
    n, (k, t, rounding) = len(updates), setting
    # Any k - t dropouts are tolerated: half of them after sharing, half after the input.
    dropouts = Dropouts(after_share=range(1, 1 + drop // 2),
                        after_masked_input=range(1 + drop // 2, 1 + drop))
    aggregator = MaskingAggregator(n, neighbours=k, threshold=t, bits=32, precision=20,
                                   bound=512.0, rounding=rounding, dropouts=dropouts,
                                   progress=prefixed(progress, f'k={k} t={t} {rounding[:3]}. '
                                                               f'drop {drop}: '))
    wall = cpu = None
    server_seconds, stats = math.inf, None
    for _ in range(repeats):
        _, stats = aggregator.aggregate(updates, weights)
        clients = [aggregator.last_round.clients[u] for u in aggregator.last_round.submitted]
        times = np.array([[c.seconds for c in clients], [c.cpu_seconds for c in clients]])
        wall = times[0] if wall is None else np.minimum(wall, times[0])
        cpu = times[1] if cpu is None else np.minimum(cpu, times[1])
        server_seconds = min(server_seconds, aggregator.last_round.server_seconds)
    return float(np.median(wall)), float(np.median(cpu)), server_seconds, stats


def masking_rows(updates: List[List[np.ndarray]], weights: np.ndarray, repeats: int,
                 progress: Optional[Progress]) -> List[Row]:
    n = len(updates)
    rows = []
    cases = [(setting, drop) for setting in masking_settings(n)
             for drop in (0, setting[0] - setting[1])]
    for setting, drop in each(progress, f'secagg rows, {n} clients', cases):
        k, t, rounding = setting
        wall, cpu, server, stats = masking_round(updates, weights, setting, drop, repeats,
                                                 progress)
        per_weight = stats.extra['bytes_per_weight_per_client']
        rows.append(Row('secagg', n, f'k={k} t={t} {rounding[:3]}.', 1e3 * wall, 1e3 * cpu,
                        1e3 * server, per_weight, per_weight / 4.0,
                        f'{k - t} of each {k} neighbours', drop, 'sum of U3; U1..U4; graph'))
        print(rows[-1], flush=True)
    return rows


def masking_floor(update: np.ndarray) -> None:
    """What bounds a masking client, best of 30 (wall and CPU): encoding, adding k + 1 masks."""
    def timed(fn):
        wall, result = best_of(30, fn)
        cpu, _ = best_of(30, fn, time.thread_time)
        return f'{1e3 * wall:6.2f} ms wall, {1e3 * cpu:6.2f} ms CPU', cpu, result

    for rounding in ('stochastic', 'deterministic'):
        quantizer = Quantizer(32, 20, 512.0, rounding)
        text, _, encoded = timed(lambda: quantizer.encode(update, 0.1, Prg(RandomSource())))
        print(f'  secagg floor: encode 1M weights ({rounding} rounding) {text}')
    for masks in (1, 5, 10):
        seeds = [bytes([i]) * 32 for i in range(masks)]
        text, cpu, _ = timed(lambda: primitives.add_masks(encoded, seeds, [1] * masks))
        print(f'  secagg floor: {masks:2d} AES-256-CTR masks of 4 B/weight added to 1M weights '
              f'{text} ({4 * masks * update.size / cpu / 1e9:.1f} GB/s CPU)', flush=True)


BACKENDS: Dict[str, Callable[[List[List[np.ndarray]], np.ndarray, int, Optional[Progress]],
                              List[Row]]] = {
    'secagg': masking_rows,
}


def print_table(rows: List[Row], plain: Dict[int, tuple]) -> None:
    """`plain[n]` = (wall, CPU) ms of the plain NumPy sum of the n updates."""
    print('secagg: b = 32 bits, precision 20, bound 512; sto./det. = stochastic/deterministic '
          'rounding')
    print(f'{"backend":8} {"clients":>7} {"setting":16} {"client ms":>9} {"x plain":>7} '
          f'{"cpu ms":>7} {"x plain":>7} {"server ms":>9} {"B/weight":>8} {"/quant.":>7} '
          f'{"dropped":>7}  tolerated; server learns')
    for r in rows:
        wall, cpu = plain[r.clients]
        print(f'{r.backend:8} {r.clients:7d} {r.setting:16} {r.client_ms:9.1f} '
              f'{r.client_ms / wall:7.2f} {r.client_cpu_ms:7.1f} {r.client_cpu_ms / cpu:7.2f} '
              f'{r.server_ms:9.1f} {r.bytes_per_weight:8.4f} {r.over_quantized:7.4f} '
              f'{r.dropped:7d}  {r.tolerated}; {r.server_learns}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--clients', type=int, nargs='+', default=[10, 100])
    parser.add_argument('--weights', type=int, default=1_000_000, choices=[1_000_000])
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--backends', nargs='+', default=sorted(BACKENDS), choices=sorted(BACKENDS))
    parser.add_argument('--quiet', action='store_true', help='no progress on stderr')
    args = parser.parse_args()
    progress = StderrProgress(verbose=0 if args.quiet else 1)
    logging.set_verbosity(logging.ERROR)
    rng = np.random.default_rng(0)
    rows, plain_ms = [], {}
    for n in args.clients:
        updates = [model_like(rng) for _ in range(n)]
        weights = rng.integers(100, 1000, size=n).astype(np.float64)
        flat = [np.concatenate([a.ravel() for a in u]) for u in updates]
        wall, _ = best_of(30, lambda: sum(flat[1:], flat[0].copy()))
        cpu, _ = best_of(30, lambda: sum(flat[1:], flat[0].copy()), time.thread_time)
        one_add, _ = best_of(30, lambda: flat[0] + flat[1])
        plain_ms[n] = (1e3 * wall, 1e3 * cpu)
        print(f'{n} clients x {args.weights:,} weights: plain NumPy sum of the {n} float32 '
              f'updates {1e3 * wall:.1f} ms wall, {1e3 * cpu:.1f} ms CPU (baseline, best of 30); '
              f'one 1M add {1e3 * one_add:.2f} ms', flush=True)
        if 'secagg' in args.backends and n == args.clients[0]:
            masking_floor(flat[0].astype(np.float64))
        for backend in args.backends:
            rows += BACKENDS[backend](updates, weights, args.repeats, progress)
        del updates, flat
    print_table(rows, plain_ms)


if __name__ == '__main__':
    main()
