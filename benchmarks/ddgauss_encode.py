"""A distributed-DP client's encoding (DDGauss, `tfpriv.federated.distributed_dp`), by step.

    PYTHONPATH=. .venv/bin/python benchmarks/ddgauss_encode.py [--dim 55050] [--clients 50]
        [--bits 16] [--sigma 1.0] [--clip 0.5] [--repeats 30]

Times, for one client's update of `--dim` values (the MNIST MLP of `fedavg_rounds.py
--dp-row` has 55,050, padded to 65,536), each step of `DistributedDpAggregator.encode`
(best of `--repeats`, wall clock): the rotation (`hadamard`), the conditional rounding,
the discrete-Gaussian noise share (`discrete_gaussian` at the σ_l of `--clients`
clients), the reduction mod 2^b, and the whole `encode`. It also prints what one round of
`--clients` encodings costs and a plain NumPy sum of the round's `--clients` float64
updates (the aggregation without privacy), measured in the same run. Only the public API
of `distributed_dp` is used, so the same script times an older checkout
(`PYTHONPATH=<old tree>`).
"""

import argparse
import time

import numpy as np

from tfpriv.federated import distributed_dp
from tfpriv.rng import Prg, RandomSource


def best_ms(fn, repeats: int) -> float:
    """Best wall time of `repeats` calls of fn, in milliseconds (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return 1e3 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dim', type=int, default=55_050)
    parser.add_argument('--clients', type=int, default=50)
    parser.add_argument('--bits', type=int, default=16)
    parser.add_argument('--sigma', type=float, default=1.0)
    parser.add_argument('--clip', type=float, default=0.5)
    parser.add_argument('--repeats', type=int, default=30)
    args = parser.parse_args()
    params = distributed_dp.matching_params(args.sigma, args.clip, args.clients, args.dim, args.bits)
    aggregator = distributed_dp.DistributedDpAggregator(
        params, distributed_dp.inner_aggregator('plain', args.bits, args.clients),
        rng=RandomSource(seed=0, cause='the benchmark'))
    update = np.random.default_rng(0).normal(size=args.dim)
    update *= args.clip / np.linalg.norm(update)
    signs = distributed_dp.rotation_signs(0, 0, params.padded_dim)
    padded = np.zeros(params.padded_dim)
    padded[:args.dim] = update
    rotated = distributed_dp.hadamard(signs * padded) * params.scale
    prg = Prg(RandomSource(seed=1, cause='the benchmark'))
    noise = distributed_dp.discrete_gaussian(params.local_stddev, params.padded_dim, prg)
    steps = {
        'rotation (hadamard)': lambda: distributed_dp.hadamard(signs * padded),
        'conditional rounding': lambda: distributed_dp.conditional_round(
            rotated, params.inflated_l2, prg),
        'discrete Gaussian share': lambda: distributed_dp.discrete_gaussian(
            params.local_stddev, params.padded_dim, prg),
        'mod 2^b': lambda: distributed_dp.centred_mod(noise, args.bits),
        'whole encode': lambda: aggregator.encode(update, signs),
    }
    print(f'd = {args.dim} (padded {params.padded_dim}), m = {args.clients}, b = {args.bits}, '
          f'σ_l = {params.local_stddev:.2f}, best of {args.repeats}')
    for name, fn in steps.items():
        print(f'  {name:24s} {best_ms(fn, args.repeats):8.2f} ms')
    encode = best_ms(steps['whole encode'], args.repeats)
    updates = np.random.default_rng(1).normal(size=(args.clients, args.dim))
    plain = best_ms(lambda: updates.sum(axis=0), args.repeats)
    print(f'  one round: {args.clients} encodings {args.clients * encode / 1e3:.3f} s; '
          f'plain sum of the {args.clients} updates {plain:.2f} ms')


if __name__ == '__main__':
    main()
