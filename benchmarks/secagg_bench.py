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
For secagg it also prints each setting's median client CPU time by protocol stage
(keys, shares sent and received, masked input, reply) and what bounds a client, best of
30: the encoding and adding each setting's k + 1 masks (AES-128-CTR keystreams of 4 bytes per
weight), and the rate of each stream cipher `cryptography` offers (`keystream_rates`).
Client time excludes `UpdateSpec.flatten` (the interface's float64 concatenation,
common to every backend) except for rlwe. Bytes per weight are over the clients whose
input counted; the rlwe figure is the ciphertext upload (the key setup's bytes are
printed apart).
With `--flower` (run with the .venv-bench Python, where flwr is installed) it also
times Flower's SecAgg+ client and server steps on the same workload (`flower_rows`);
without flwr that part is skipped with one line.
Unless `--default-allocator`, the process keeps freed memory (`tfpriv.allocator`, as
`train.py` does), for the baseline and every backend alike.
"""

import os

# One BLAS thread (Shamir's evaluation runs through matmul): with a second one spinning on a
# shared 2-core machine, Shamir's client took 3x its CPU time in wall time.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
os.environ.setdefault('OMP_NUM_THREADS', '1')
# pylint: disable=wrong-import-position
import argparse
import contextlib
import dataclasses
import importlib
import math
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from absl import logging
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tfpriv import allocator
from tfpriv.crypto.masking import Dropouts, MaskingAggregator, Quantizer, primitives
from tfpriv.crypto.masking.graph import default_neighbours
from tfpriv.crypto.masking.protocol import STAGE_NAMES
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
    """(neighbours k, threshold t, rounding): for n <= 10 the complete graph, the default
    degree (`default_neighbours`, 2 ceil(log2 n): 8 at n = 10) and the sparse graph with k =
    the even number >= log2 n (SecAgg+'s O(log n)), the last with deterministic rounding too;
    for n > 10 that sparse graph and the default degree."""
    smallest = 2 * math.ceil(math.log2(n) / 2)
    degrees = [n - 1, default_neighbours(n), smallest] if n <= 10 else [smallest, default_neighbours(n)]
    settings = [(k, k // 2 + 1, 'stochastic') for k in dict.fromkeys(degrees)]
    if n <= 10:
        settings.append((smallest, smallest // 2 + 1, 'deterministic'))
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
    best = None  # per client: wall, CPU, then CPU by stage (each its best of the repeats)
    server_seconds, stats = math.inf, None
    for _ in range(repeats):
        _, stats = aggregator.aggregate(updates, weights)
        clients = [aggregator.last_round.clients[u] for u in aggregator.last_round.submitted]
        times = np.array([[c.seconds for c in clients], [c.cpu_seconds for c in clients]]
                         + [[c.stage_cpu_seconds.get(s, 0.0) for c in clients] for s in STAGE_NAMES])
        best = times if best is None else np.minimum(best, times)
        server_seconds = min(server_seconds, aggregator.last_round.server_seconds)
    stages = ', '.join(f'{name} {1e3 * float(np.median(row)):.2f}'
                       for name, row in zip(STAGE_NAMES, best[2:]))
    print(f'  secagg k={k} t={t} {rounding[:3]}. drop {drop}: median client CPU by stage (ms): '
          f'{stages}', flush=True)
    return float(np.median(best[0])), float(np.median(best[1])), server_seconds, stats


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


def keystream_rates(nbytes: int = 1 << 22) -> None:
    """GB/s (CPU time, best of 30) of the stream ciphers `cryptography` offers: AES-128-CTR (the
    masks), AES-256-CTR (`Prg`) and ChaCha20; the fastest is the masks' floor."""
    buffer, zeros = np.empty(nbytes + 16, dtype=np.uint8), bytes(nbytes)
    ciphers = {'AES-128-CTR': (algorithms.AES(bytes(16)), modes.CTR(bytes(16))),
               'AES-256-CTR': (algorithms.AES(bytes(32)), modes.CTR(bytes(16))),
               'ChaCha20': (algorithms.ChaCha20(bytes(32), bytes(16)), None)}
    rates = []
    for name, (algorithm, mode) in ciphers.items():
        encryptor = Cipher(algorithm, mode).encryptor()
        cpu, _ = best_of(30, lambda: encryptor.update_into(zeros, buffer), time.thread_time)
        rates.append(f'{name} {nbytes / cpu / 1e9:.1f} GB/s')
    print(f'  keystreams of {nbytes / 2**20:.0f} MiB (CPU): {", ".join(rates)}', flush=True)


def masking_floor(update: np.ndarray, settings: Sequence[tuple]) -> None:
    """What bounds a masking client, best of 30 (wall and CPU): encoding, and adding the k + 1
    masks of each setting (k pairwise, one self mask)."""
    def timed(fn):
        wall, result = best_of(30, fn)
        cpu, _ = best_of(30, fn, time.thread_time)
        return f'{1e3 * wall:6.2f} ms wall, {1e3 * cpu:6.2f} ms CPU', cpu, result

    keystream_rates()
    for rounding in ('stochastic', 'deterministic'):
        quantizer = Quantizer(32, 20, 512.0, rounding)
        text, _, encoded = timed(lambda: quantizer.encode(update, 0.1, Prg(RandomSource())))
        print(f'  secagg floor: encode {update.size:,} weights ({rounding} rounding) {text}')
    for masks in sorted({1} | {k + 1 for k, _, _ in settings}):
        seeds = [bytes([i]) * 32 for i in range(masks)]
        text, cpu, _ = timed(lambda: primitives.add_masks(encoded, seeds, [1] * masks))
        print(f'  secagg floor: {masks:2d} AES-128-CTR masks of 4 B/weight added to '
              f'{update.size:,} weights {text} ({4 * masks * update.size / cpu / 1e9:.1f} GB/s CPU)', flush=True)


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


@dataclasses.dataclass
class FlowerRound:
    """One simulated Flower SecAgg+ round: its clients' states, clocks and bytes sent."""

    mod: object  # flwr.client.mod.secure_aggregation.secaggplus_mod
    ring: Dict[int, set]  # node id -> its k neighbours and itself
    states: dict
    clocks: np.ndarray  # client, stage, (wall, CPU) seconds
    sent: np.ndarray  # bytes per client
    server: float = 0.0  # server wall seconds

    def client(self, u: int, stage: Callable, *args):
        """Client u runs one of Flower's stage functions, timed into `clocks`."""
        wall, cpu = time.perf_counter(), time.thread_time()
        reply = stage(self.states[u], *args)
        index = [self.mod._setup, self.mod._share_keys,  # pylint: disable=protected-access
                 self.mod._collect_masked_vectors, self.mod._unmask].index(stage)  # pylint: disable=protected-access
        self.clocks[u, index] += (time.perf_counter() - wall, time.thread_time() - cpu)
        return reply


def _flower_share_keys(fl: FlowerRound, config: dict) -> Dict[int, tuple]:
    """Flower's stages 0 and 1 (key setup, encrypted shares); each client's inbox of shares."""
    from flwr.common.secure_aggregation.secaggplus_constants import Key
    keys = {u: fl.client(u, fl.mod._setup, config) for u in fl.ring}  # pylint: disable=protected-access
    for u in fl.ring:
        fl.sent[u] += len(keys[u][Key.PUBLIC_KEY_1]) + len(keys[u][Key.PUBLIC_KEY_2])
    inbox = {u: ([], []) for u in fl.ring}
    for u in fl.ring:
        reply = fl.client(u, fl.mod._share_keys, {  # pylint: disable=protected-access
            str(v): (keys[v][Key.PUBLIC_KEY_1], keys[v][Key.PUBLIC_KEY_2]) for v in fl.ring[u]})
        for dst, ciphertext in zip(reply[Key.DESTINATION_LIST], reply[Key.CIPHERTEXT_LIST]):
            inbox[dst][0].append(u)
            inbox[dst][1].append(ciphertext)
            fl.sent[u] += len(ciphertext)
    return inbox


def _flower_masked_sum(fl: FlowerRound, inbox, weights, params, modulus: int):
    """Flower's stage 2: every client's masked vector, summed by the server mod `modulus`."""
    from flwr.common import bytes_to_ndarray
    from flwr.common.secure_aggregation import ndarrays_arithmetic as arith
    from flwr.common.secure_aggregation.secaggplus_constants import Key
    total = None
    for i, u in enumerate(fl.ring):
        reply = fl.client(u, fl.mod._collect_masked_vectors,  # pylint: disable=protected-access
                          {Key.SOURCE_LIST: inbox[u][0], Key.CIPHERTEXT_LIST: inbox[u][1]},
                          int(weights[i]), params[i])
        fl.sent[u] += sum(len(b) for b in reply[Key.MASKED_PARAMETERS])
        start = time.perf_counter()
        vector = [bytes_to_ndarray(b) for b in reply[Key.MASKED_PARAMETERS]]
        total = vector if total is None else arith.parameters_addition(total, vector)
        fl.server += time.perf_counter() - start
    start = time.perf_counter()
    total = arith.parameters_mod(total, modulus)
    fl.server += time.perf_counter() - start
    return total


def _flower_unmask(fl: FlowerRound, total, modulus: int, clip: float, target: int):
    """Flower's stage 3 and the server's unmasking and dequantization; the average."""
    from flwr.common.secure_aggregation import ndarrays_arithmetic as arith
    from flwr.common.secure_aggregation.crypto.shamir import combine_shares
    from flwr.common.secure_aggregation.quantization import dequantize
    from flwr.common.secure_aggregation.secaggplus_constants import Key
    from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen
    shares = {u: [] for u in fl.ring}
    for u in fl.ring:
        reply = fl.client(u, fl.mod._unmask, {  # pylint: disable=protected-access
            Key.ACTIVE_NODE_ID_LIST: list(fl.ring[u]), Key.DEAD_NODE_ID_LIST: []})
        for owner, share in zip(reply[Key.NODE_ID_LIST], reply[Key.SHARE_LIST]):
            shares[owner].append(share)
            fl.sent[u] += len(share)
    start = time.perf_counter()
    for u in fl.ring:
        mask = pseudo_rand_gen(combine_shares(shares[u]), modulus,
                               arith.get_parameters_shape(total))
        total = arith.parameters_subtraction(total, mask)
    ratio, summed = arith.factor_extract(arith.parameters_mod(total, modulus))
    average = dequantize(summed, clip, target)
    for vector in average:
        vector += -(len(fl.ring) - 1) * clip
        vector *= target / ratio
    fl.server += time.perf_counter() - start
    return average


def flower_round(updates, weights, k: int, t: int):
    """One SecAgg+ round of Flower 1.42 in this process: each client runs the stage functions of
    `flwr.client.mod.secure_aggregation.secaggplus_mod` (setup, share keys, masked vector,
    unmask); the routing and the server's unmasking call Flower's own functions in the order
    of `SecAggPlusWorkflow` (its ring of k neighbours, `combine_shares`, `pseudo_rand_gen`,
    `parameters_*`, `dequantize`). Returns per-client [stage, (wall, CPU)] seconds, server seconds,
    bytes each client sent, and the average."""
    # The package re-exports the function `secaggplus_mod` under the module's name.
    mod = importlib.import_module('flwr.client.mod.secure_aggregation.secaggplus_mod')
    from flwr.common import ndarrays_to_parameters
    from flwr.common.secure_aggregation.secaggplus_constants import Key
    n, target, modulus, clip = len(updates), 2**22, 2**32, 8.0  # Flower's defaults
    nids = list(range(1, n + 1))
    ring = {u: {nids[(i + d) % n] for d in range(-(k // 2), k // 2 + 1)}
            for i, u in enumerate(nids)}
    fl = FlowerRound(mod, ring, {u: mod.SecAggPlusState(nid=u) for u in nids},
                     np.zeros((n + 1, 4, 2)), np.zeros(n + 1))
    config = {Key.SAMPLE_NUMBER: n, Key.SHARE_NUMBER: k + 1, Key.THRESHOLD: t,
              Key.CLIPPING_RANGE: clip, Key.TARGET_RANGE: target, Key.MOD_RANGE: modulus,
              Key.MAX_WEIGHT: 1000.0}
    inbox = _flower_share_keys(fl, config)
    params = [ndarrays_to_parameters(update) for update in updates]
    total = _flower_masked_sum(fl, inbox, weights, params, modulus)
    average = _flower_unmask(fl, total, modulus, clip, target)
    return fl.clocks[1:], fl.server, fl.sent[1:], average


def flower_parts(update: List[np.ndarray], k: int, t: int) -> None:
    """CPU ms of Flower's client building blocks on one update, best of 5 each."""
    from flwr.common.secure_aggregation.crypto.shamir import create_shares
    from flwr.common.secure_aggregation.crypto.symmetric_encryption import generate_shared_key
    from flwr.common.secure_aggregation.quantization import quantize
    from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen
    from flwr.supercore.primitives.asymmetric import generate_key_pairs
    (secret, _), (_, public) = generate_key_pairs(), generate_key_pairs()
    shapes = [a.shape for a in update]
    parts = {'quantize (stochastic, 2^22 levels)': lambda: quantize(update, 8.0, 2**22),
             'one mask (pseudo_rand_gen, int64)': lambda: pseudo_rand_gen(b'x' * 32, 2**32,
                                                                           shapes),
             f'Shamir shares of a 32-byte seed, {t} of {k + 1}':
                 lambda: create_shares(b'x' * 32, t, k + 1),
             'one key agreement (X25519 + HKDF)': lambda: generate_shared_key(secret, public)}
    timings = [f'{name} {1e3 * best_of(5, fn, time.thread_time)[0]:.2f}'
               for name, fn in parts.items()]
    print(f'flower: parts, CPU ms: {"; ".join(timings)}', flush=True)


def flower_rows(updates, weights, repeats, progress) -> List[Row]:
    """Flower's SecAgg+ (`flower_round`) at k = 4 neighbours, t = 3, 2^32, 1 line if no flwr."""
    try:
        import flwr  # pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        print('flower: flwr is not importable in this Python: Flower SecAgg+ skipped')
        return []
    n, k, t = len(updates), 4, 3
    size = sum(a.size for a in updates[0])
    best, server = None, math.inf
    for _ in each(progress, f'flower rounds, {n} clients', range(repeats)):
        clocks, seconds, sent, average = flower_round(updates, weights, k, t)
        best = clocks if best is None else np.minimum(best, clocks)
        server = min(server, seconds)
    stages = np.median(best[:, :, 1], axis=0)
    print(f'flower: client CPU ms by stage (median over clients): setup (2 X25519 key pairs) '
          f'{1e3 * stages[0]:.2f}, share keys (Shamir shares of seed and key, key agreement, '
          f'encryption) {1e3 * stages[1]:.2f}, masked vector (deserialize, quantize, '
          f'{k + 1} masks) {1e3 * stages[2]:.2f}, unmask {1e3 * stages[3]:.2f}')
    flower_parts(updates[0], k, t)
    flat = [np.concatenate([a.ravel() for a in u]).astype(np.float64) for u in updates]
    plain = sum(w * f for w, f in zip(weights, flat)) / float(np.sum(weights))
    error = float(np.max(np.abs(np.concatenate([a.ravel() for a in average]) - plain)))
    per_weight = float(np.median(sent)) / size
    print(f'flower: {n} clients, k = {k}, t = {t}, 2^32, clipping 8, 2^22 levels, '
          f'Flower\'s weights (num_examples / 1000): max error vs the weighted average '
          f'{error:.1e}', flush=True)
    return [Row('flower', n, f'k={k} t={t} sto.', 1e3 * float(np.median(best[:, :, 0].sum(1))),
                1e3 * float(np.median(best[:, :, 1].sum(1))), 1e3 * server, per_weight, per_weight / 4.0,
                f'{k - t} of each {k} neighbours', 0, 'sum; who sent; ring graph')]


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
    parser.add_argument('--flower', action='store_true',
                        help="also Flower's SecAgg+ (flwr; skipped with one line without it)")
    parser.add_argument('--default-allocator', action='store_true',
                        help="keep glibc malloc's default policy (tfpriv.allocator)")
    args = parser.parse_args()
    if not args.default_allocator:
        allocator.keep_freed_memory()
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
            masking_floor(flat[0].astype(np.float64), masking_settings(n))
        for backend in args.backends:
            rows += BACKENDS[backend](updates, weights, args.repeats, progress)
        if args.flower:
            rows += flower_rows(updates, weights, args.repeats, progress)
        del updates, flat
    print_table(rows, plain_ms)


if __name__ == '__main__':
    main()
