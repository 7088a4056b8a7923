"""DP-FedAvg (user-level DP, McMahan, Ramage, Talwar, Zhang, "Learning Differentially
Private Recurrent Language Models", ICLR 2018) through TFF's DP aggregators, and its ε.

By default each round the server samples m of the K clients uniformly
*without replacement* (a fixed-size sample, exactly what `fedavg.sample_clients`
does). Every sampled client's model delta is clipped to L2 norm S, the
clipped deltas are summed, N(0, (σS)^2) noise is added and the sum is divided
by the fixed m (`tff.aggregators.DifferentiallyPrivateFactory.gaussian_fixed`).
With adaptive clipping (`gaussian_adaptive`, Andrew, Thakkar, McMahan,
Ramaswamy, "Differentially Private Learning with Adaptive Clipping", NeurIPS
2021) S follows a private estimate of a quantile of the update norms; TFF
splits the σ it is given between the deltas and the clipped-count query so
that the *total* mechanism has noise multiplier σ, hence the same accounting.

Accounting (exact for this sampling): fixed-size sampling without
replacement is analysed with K public under the *replace-one* neighbouring
relation (Wang, Balle, Kasiviswanathan, "Subsampled Rényi Differential Privacy
and Analytical Moments Accountant", AISTATS 2019, Thm. 27): dp_accounting's
`SampledWithoutReplacementDpEvent` with an `RdpAccountant(REPLACE_ONE)`.
Replacing one client's clipped delta moves the sum by up to 2S, so the Gaussian
noise multiplier relative to that sensitivity is σS / 2S = σ/2. T rounds are
the T-fold self-composition:

    SelfComposed(SampledWithoutReplacement(K, m, Gaussian(σ/2)), T)

With `client_sampling='poisson'` (`fedavg.poisson_clients`: each client joins
a round independently with probability C) neighbouring federations differ by
adding or removing one client, the sum has sensitivity S, and a round is
`PoissonSampled(C, Gaussian(σ))` (Mironov, Talwar, Zhang 2019); the noised sum
is divided by the expected count C K. For the same σ this ε is several times
smaller (e.g. `benchmarks/fedavg_rounds.py --epsilon-curves`). The events, the
accountant and `default_delta` (δ < 1/K) come from `tfpriv.dp.accounting`. The DP noise itself
is drawn by TFF (TensorFlow Privacy's DP queries, seeded per round in the
aggregator state), not by `tfpriv.rng`.
"""

from __future__ import annotations

from tfpriv.dp.accounting import default_delta, fedavg_epsilons as epsilons, fedavg_event as round_event

__all__ = ['aggregator_factory', 'default_delta', 'epsilons', 'round_event']


def aggregator_factory(clients_per_round: float, noise_multiplier: float, l2_norm_clip: float,
                       adaptive: bool = False, target_quantile: float = 0.5):
    """TFF's DP model aggregator for DP-FedAvg (fixed or adaptive clipping).

    `clients_per_round` is the denominator of the average: m for fixed-size sampling, the
    expected count C K for Poisson sampling (the noised sum is divided by it, not by the
    random number of clients that joined, so that count stays private).
    """
    import tensorflow_federated as tff
    if noise_multiplier < 0 or l2_norm_clip <= 0 or clients_per_round <= 0:
        raise ValueError('DP-FedAvg needs noise_multiplier >= 0, l2_norm_clip > 0 and a positive '
                         f'(expected) number of clients per round, got {noise_multiplier}, '
                         f'{l2_norm_clip}, {clients_per_round}')
    factory = tff.aggregators.DifferentiallyPrivateFactory
    if adaptive:
        # TFF's default count noise 0.05 m must exceed σ/2; with few clients per round we
        # raise it to σ (the value noise then grows to σ / sqrt(3/4)), keeping total σ.
        count_stddev = max(0.05 * clients_per_round, noise_multiplier)
        return factory.gaussian_adaptive(noise_multiplier, float(clients_per_round),
                                         initial_l2_norm_clip=l2_norm_clip,
                                         target_unclipped_quantile=target_quantile,
                                         clipped_count_stddev=count_stddev)
    return factory.gaussian_fixed(noise_multiplier, float(clients_per_round), l2_norm_clip)
