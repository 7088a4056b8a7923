"""Secure aggregation backends side by side: one table row per backend, round size and setting.

    PYTHONPATH=. .venv/bin/python benchmarks/secagg_bench.py [--clients 10 100]
        [--weights 1000000] [--repeats 2] [--backends secagg] [--quiet]

Progress (each row, and each protocol stage's clients) goes to stderr unless
`--quiet`; stdout holds the figures and the table only.

For every round size (clients x `--weights`, float32 updates of a kernel and a 1000 bias;
999 x 1000 for 1M) it measures, in one run and with the OS CSPRNG:
  * the baseline: a plain NumPy sum of the round's float32 updates (the
    aggregation the protocol replaces; best of 30);
  * each backend of `BACKENDS` (shamir, smpc, rlwe, secagg): per-client time
    (median over the clients whose input counted of the time each spends
    computing its messages, each client's best of `--repeats`; wall-clock and
    thread CPU time, the latter insensitive to waiting for a shared CPU), server
    time (best of `--repeats`), bytes each client sends per weight (from the
    serialized messages), that over a 4-byte quantized update, the dropouts it
    tolerates and what the server learns.
What counts as client time: secagg, every stage's messages (`protocol.Client`
clocks); shamir, `_client_shares` (bound check, encoding, split into the holders'
rows); smpc, `SharedTensor.share` (encoding, the 3 additive shares); rlwe,
`_client_message` (flatten, encoding, encryption, compression, serialization)
plus the key setup of all holders divided by the clients. Server time is the
round less the clients' wall time: for shamir and smpc it includes the holders'
or parties' additions, for rlwe the threshold decryption (partials included).
For secagg it also prints what bounds a client, best of 30: the encoding and
adding k + 1 masks (AES-256-CTR keystreams of 4 bytes per weight).
Client time excludes `UpdateSpec.flatten` (the interface's float64 concatenation,
common to every backend) except for rlwe. Bytes per weight are over the clients whose
input counted; the rlwe figure is the ciphertext upload (the key setup's bytes are
printed apart).
With `--flower` (run with the .venv-bench Python, where flwr is installed) it also
times Flower's SecAgg+ client and server steps on the same workload (`flower_rows`);
without flwr that part is skipped with one line.
"""

import argparse
import contextlib
import dataclasses
import math
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

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


def model_like(rng: np.random.Generator, size: int = 1_000_000) -> List[np.ndarray]:
    """A `size`-weight update (a multiple of 1000): a (size/1000 - 1) x 1000 kernel and a 1000
    bias, float32 (999 x 1000 and 1000 for 1M weights)."""
    return [rng.normal(scale=0.05, size=(size // 1000 - 1, 1000)).astype(np.float32),
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
        print(f'  secagg floor: encode {update.size:,} weights ({rounding} rounding) {text}')
    for masks in (1, 5, 10):
        seeds = [bytes([i]) * 32 for i in range(masks)]
        text, cpu, _ = timed(lambda: primitives.add_masks(encoded, seeds, [1] * masks))
        print(f'  secagg floor: {masks:2d} AES-256-CTR masks of 4 B/weight added to {update.size:,} weights '
              f'{text} ({4 * masks * update.size / cpu / 1e9:.1f} GB/s CPU)', flush=True)


@contextlib.contextmanager
def timed(owner, name: str) -> Iterator[List[Tuple[float, float]]]:
    """Wraps owner.name (a method of a class or an instance) to record (wall, CPU) seconds of
    each call; restores it on exit."""
    calls: List[Tuple[float, float]] = []
    raw = owner.__dict__.get(name) if isinstance(owner, type) else None
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.thread_time()
        result = original(*args, **kwargs)
        calls.append((time.perf_counter() - wall, time.thread_time() - cpu))
        return result
    setattr(owner, name, wrapper)
    try:
        yield calls
    finally:
        if raw is not None:
            setattr(owner, name, raw)
        else:
            delattr(owner, name)


def wrapped_rounds(aggregator, owner, name: str, updates, weights, repeats: int):
    """Runs `repeats` rounds timing the client step owner.name. Returns the median over
    clients of each one's best (wall, CPU) client time, the best round time less the clients'
    wall time (the server's and the holders' part), and the last stats."""
    n, wall, cpu, server, stats = len(updates), None, None, math.inf, None
    for _ in range(repeats):
        with timed(owner, name) as calls:
            start = time.perf_counter()
            _, stats = aggregator.aggregate(updates, weights)
            total = time.perf_counter() - start
        times = np.array(calls[-n:]).T
        wall = times[0] if wall is None else np.minimum(wall, times[0])
        cpu = times[1] if cpu is None else np.minimum(cpu, times[1])
        server = min(server, total - float(np.sum(times[0])))
    return float(np.median(wall)), float(np.median(cpu)), server, stats


def shamir_rows(updates, weights, repeats, progress) -> List[Row]:
    """Shamir (n = 10 holders, t = 6): client = bound check, encode, split into 10 rows."""
    from tfpriv.crypto.shamir.secagg import ShamirAggregator
    n, size = len(updates), updates[0][0].size + updates[0][1].size
    aggregator = ShamirAggregator(10, 6, progress=prefixed(progress, 'shamir '))
    wall, cpu, server, stats = wrapped_rounds(aggregator, aggregator, '_client_shares', updates,
                                              weights, repeats)
    per_weight = stats.extra['bytes_per_weight_per_client']
    return [Row('shamir', n, 'n=10 t=6 f=20', 1e3 * wall, 1e3 * cpu, 1e3 * server, per_weight,
                per_weight / 4.0, '4 of 10 holders; clients any time', 0,
                'weighted sum; who sent; t holders together: every update')]


def smpc_rows(updates, weights, repeats, progress) -> List[Row]:
    """Additive sharing among 3 parties (Z_2^64): client = encode, draw and send 3 shares."""
    from tfpriv.crypto.smpc.secagg import SmpcAggregator
    from tfpriv.crypto.smpc.tensor import SharedTensor
    n, size = len(updates), updates[0][0].size + updates[0][1].size
    aggregator = SmpcAggregator(3, progress=prefixed(progress, 'smpc '))
    wall, cpu, server, stats = wrapped_rounds(aggregator, SharedTensor, 'share', updates,
                                              weights, repeats)
    per_weight = stats.bytes_per_client / size
    return [Row('smpc', n, '3 parties f=32', 1e3 * wall, 1e3 * cpu, 1e3 * server, per_weight,
                per_weight / 4.0, '0 parties; clients before sending', 0,
                'weighted sum; who sent; all 3 parties together: every update')]


def rlwe_rows(updates, weights, repeats, progress) -> List[Row]:
    """Dealer-free threshold BFV (n = 4096, T = floor(k/2) + 1, f = 12, B = 0.5): client = encode, encrypt,
    serialize, plus its share of the key setup (all holders' setup time / k)."""
    from tfpriv.crypto.rlwe.secagg import RlweAggregator
    n, size = len(updates), updates[0][0].size + updates[0][1].size
    # Exact integer weights (the example counts) times 2^f B must stay below t / 2 = 2^29.
    aggregator = RlweAggregator('n4096', precision=12, bound=0.5,
                                progress=prefixed(progress, 'rlwe '))
    wall, cpu, server, stats = wrapped_rounds(aggregator, aggregator, '_client_message',
                                              updates, weights, repeats)
    setup = stats.extra['setup_seconds'] / n
    per_weight = stats.extra['bytes_per_weight']
    threshold = int(stats.extra['threshold'])
    return [Row('rlwe', n, f'n=4096 T={threshold} f=12', 1e3 * (wall + setup), 1e3 * (cpu + setup),
                1e3 * (server - stats.extra['setup_seconds']), per_weight, per_weight / 4.0,
                f'{n - threshold} of {n} key holders', 0,
                'weighted sum; ciphertexts; T clients together: every update')]


BACKENDS: Dict[str, Callable[[List[List[np.ndarray]], np.ndarray, int, Optional[Progress]],
                              List[Row]]] = {
    'shamir': shamir_rows,
    'smpc': smpc_rows,
    'rlwe': rlwe_rows,
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
    parser.add_argument('--weights', type=int, default=1_000_000,
                        help='weights per update, a multiple of 1000 (at least 2000)')
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--backends', nargs='+', default=sorted(BACKENDS), choices=sorted(BACKENDS))
    parser.add_argument('--quiet', action='store_true', help='no progress on stderr')
    args = parser.parse_args()
    progress = StderrProgress(verbose=0 if args.quiet else 1)
    logging.set_verbosity(logging.ERROR)
    rng = np.random.default_rng(0)
    rows, plain_ms = [], {}
    for n in args.clients:
        updates = [model_like(rng, args.weights) for _ in range(n)]
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
