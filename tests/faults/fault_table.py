"""The fault table: one row per privacy-critical fault, what it patches, and its guard tests.

Each `inject` monkeypatches the library before any test module imports it
(`fault_plugin` calls it from `pytest_configure`). Faults that scale a noise
parameter wrap the method that reads it (`_scaled_during`), so the library's own
reported parameters (ε, the configured σ) are left untouched, as a real bug would.
New privacy code adds its row here.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Dict, Tuple

import numpy as np
import pytest

KERAS = 'tests/dp/test_keras.py::test_noise_is_scaled_to_the_expected_batch_size'
SAMPLING = 'tests/crypto/rlwe/test_sampling.py'
MULTIPARTY = 'tests/crypto/rlwe/test_multiparty.py'
MASKING = 'tests/crypto/masking/test_secagg.py'
SMPC_SECRECY = ('tests/crypto/smpc/test_ring.py::'
                'test_n_minus_1_shares_are_uniform_and_independent_of_the_secret')
DP_FEDAVG_NOISE = 'tests/federated/test_dp_fedavg_noise.py'
DDGAUSS = 'tests/federated/test_distributed_dp.py'
CLIENTS = 'tests/federated/test_client_sampling.py'
TEACHERS = 'tests/dp/pate/test_teachers.py::test_each_teacher_fits_its_own_shard_from_fresh_weights'
DP_FEDAVG_ADAPTIVE = 'tests/federated/test_dp_fedavg_adaptive_noise.py'
POISSON = 'tests/dp/test_sampling.py::test_poisson_batches_have_binomial_sizes_and_empty_batches'
POISSON_RATE = 'tests/dp/test_sampling.py::test_poisson_rate_batch_size_variance_and_row_counts_two_sided'


@dataclasses.dataclass(frozen=True)
class Fault:
    """A named fault: `patch` says what `inject` changes; `guards` must go red under it.

    `gap` (non-empty) marks a known survivor: no guard test catches it yet; the meta-test
    expects it to survive (strict xfail), so adding the missing guard flips it to a failure
    that asks for `gap` to be removed.
    """

    name: str
    patch: str
    guards: Tuple[str, ...]
    inject: Callable[[pytest.MonkeyPatch], None]
    gap: str = ''


def _scaled_during(monkeypatch: pytest.MonkeyPatch, cls: type, method: str, attribute: str,
                   factor: float) -> None:
    """cls.method runs with self.attribute multiplied by `factor` (restored afterwards)."""
    original = getattr(cls, method)

    @functools.wraps(original)
    def faulty(self, *args, **kwargs):
        saved = getattr(self, attribute)
        setattr(self, attribute, saved * factor)
        try:
            return original(self, *args, **kwargs)
        finally:
            setattr(self, attribute, saved)

    monkeypatch.setattr(cls, method, faulty)


def _wrap(monkeypatch: pytest.MonkeyPatch, module, name: str,
          make: Callable[[Callable], Callable]) -> None:
    """module.name = make(original)."""
    monkeypatch.setattr(module, name, make(getattr(module, name)))


def _dpsgd_noise(factor: float) -> Callable[[pytest.MonkeyPatch], None]:
    def inject(monkeypatch):
        from tfpriv.dp.sgd import DPSGDModel
        _scaled_during(monkeypatch, DPSGDModel, '_privatize', 'noise_multiplier', factor)
    return inject


def _dpsgd_clipping_ignored(monkeypatch):
    """Every clipping path clips at 100 C while the noise stays calibrated to C."""
    from tfpriv.dp.sgd import DPSGDModel
    for method in ('_fast_sum', '_vectorized_sum', '_loop_sum'):
        _scaled_during(monkeypatch, DPSGDModel, method, 'l2_norm_clip', 100.0)


def _poisson_rate(factor: float) -> Callable[[pytest.MonkeyPatch], None]:
    """Poisson batches drawn at factor q while the accountant is told q."""
    def inject(monkeypatch):
        from tfpriv.dp import sampling
        _wrap(monkeypatch, sampling, 'poisson_batches',
              lambda original: lambda x, y, q, steps, seed=None, **kwargs: original(
                  x, y, min(1.0, q * factor), steps, seed, **kwargs))
    return inject


def _pate_scale(cls_name: str, attribute: str, factor: float):
    def inject(monkeypatch):
        from tfpriv.dp.pate import aggregation
        _scaled_during(monkeypatch, getattr(aggregation, cls_name), '__call__', attribute,
                       factor)
    return inject


def _rlwe_zero_key(monkeypatch):
    from tfpriv.crypto.rlwe import sampling
    _wrap(monkeypatch, sampling, 'ternary', lambda original: lambda prg, shape: original(
        prg, shape) * 0)


def _rlwe_narrow_errors(monkeypatch):
    from tfpriv.crypto.rlwe import sampling
    _wrap(monkeypatch, sampling, 'gaussian', lambda original: lambda prg, shape, sigma: original(
        prg, shape, sigma * 0.3 / 3.2))


def _one_bit_smudging(monkeypatch):
    from tfpriv.crypto.rlwe import threshold
    _wrap(monkeypatch, threshold, 'smudging_residues',
          lambda original: lambda prg, primes, shape, bits: original(prg, primes, shape, 1))


def _dirichlet_shape(monkeypatch):
    from tfpriv.federated import partition
    _wrap(monkeypatch, partition, 'dirichlet',
          lambda original: lambda rng, alpha, k: original(rng, alpha * 1.09, k))


def _shamir_zero_coefficients(monkeypatch):
    """Every sharing polynomial is the constant secret (threshold 1): t - 1 shares reveal it."""
    from tfpriv.crypto.shamir import field
    _wrap(monkeypatch, field, 'split_field',
          lambda original: lambda secret, threshold, num_shares, modulus, rng=None, xs=None:
          original(secret, 1, num_shares, modulus, rng, xs))


def _no_pairwise_masks(monkeypatch):
    """Clients add only their self mask (no neighbours held while masking)."""
    from tfpriv.crypto.masking import protocol

    def make(original):
        def masked_input(state, client):
            held, client.held = client.held, {}
            try:
                return original(state, client)
            finally:
                client.held = held
        return masked_input
    _wrap(monkeypatch, protocol, '_masked_input', make)


def _no_self_mask(monkeypatch):
    """Clients add no self mask PRG(b_u) and the server removes none (a consistent drop)."""
    from tfpriv.crypto.masking import primitives, protocol
    self_seeds = set()

    def record(original):
        def client_shares(state, client):
            shares = original(state, client)
            self_seeds.add(client.self_seed)
            return shares
        return client_shares

    def skip(original):
        def add_masks(out, seeds, signs, fill=None):
            kept = [(seed, sign) for seed, sign in zip(seeds, signs) if seed not in self_seeds]
            return original(out, [s for s, _ in kept], [g for _, g in kept], fill)
        return add_masks
    _wrap(monkeypatch, protocol, '_client_shares', record)
    _wrap(monkeypatch, primitives, 'add_masks', skip)


def _smpc_low_bits_zero(monkeypatch):
    """The n - 1 random SMPC shares have their low 16 bits zero (a low-entropy Prg draw)."""
    from tfpriv.crypto.smpc import sharing

    class _Weak:
        def __init__(self, prg):
            self._prg = prg

        def draw(self, shape, dtype):
            return self._prg.draw(shape, dtype) & ~np.array(0xFFFF, dtype=dtype)

    _wrap(monkeypatch, sharing, 'split', lambda original: lambda values, num_parties, prg,
          binary=False: original(values, num_parties, _Weak(prg), binary))


def _dealer_low_entropy_triples(monkeypatch):
    """The dealer's Beaver triples draw a and b with their low 16 bits zero."""
    from tfpriv.crypto.smpc.dealer import Dealer

    def triple(self, op, shape_a, shape_b, binary=False, dtype=np.uint64):
        weak = ~np.array(0xFFFF, dtype=dtype)
        a, b = self._prg.draw(shape_a, dtype) & weak, self._prg.draw(shape_b, dtype) & weak
        return self._deal([(a, binary), (b, binary), (op(a, b), binary)])

    monkeypatch.setattr(Dealer, 'triple', triple)


def _prg_modulo_bias(monkeypatch):
    """Prg.uniform_mod reduces bit-length-masked words mod m without rejection (modulo bias)."""
    from tfpriv import rng

    def biased(self, modulus, shape):
        mask = (1 << (modulus - 1).bit_length()) - 1
        words = self.uint64(rng._size(shape)) & np.uint64(mask)  # pylint: disable=protected-access
        return (words % np.uint64(modulus)).astype(np.int64).reshape(shape)
    monkeypatch.setattr(rng.Prg, 'uniform_mod', biased)


def _prg_low_entropy_key(monkeypatch):
    """Prg keys AES with 16 bits of its source's entropy (rest of the key and the nonce zero)."""
    from tfpriv import rng
    _wrap(monkeypatch, rng.Prg, '_start', lambda original: lambda self, key, nonce: original(
        self, key[:2] + bytes(30), bytes(16)))


def _dpfedavg_noise(factor: float):
    """TFF's DP aggregator is built with factor x the noise multiplier that ε is computed for."""
    def inject(monkeypatch):
        from tfpriv.federated import dp_fedavg
        _wrap(monkeypatch, dp_fedavg, 'aggregator_factory',
              lambda original: lambda clients_per_round, noise_multiplier, *args, **kwargs:
              original(clients_per_round, noise_multiplier * factor, *args, **kwargs))
    return inject


def _adaptive_noise_not_split(monkeypatch):
    """TFF's adaptive clipping adds value noise sigma (not sigma_v > sigma) while still
    noising the clipped count: the count's privacy cost is not paid, the total is below sigma."""
    from tensorflow_federated.python.aggregators import differential_privacy
    _wrap(monkeypatch, differential_privacy, 'adaptive_clip_noise_params',
          lambda original: lambda noise_multiplier, *args: (
              noise_multiplier, original(noise_multiplier, *args)[1]))


def _ddgauss_noise(factor: float) -> Callable[[pytest.MonkeyPatch], None]:
    def inject(monkeypatch):
        from tfpriv.federated import distributed_dp
        _wrap(monkeypatch, distributed_dp, 'discrete_gaussian',
              lambda original: lambda sigma, size, prg: original(sigma * factor, size, prg))
    return inject


def _ddgauss_clipping_ignored(monkeypatch):
    from tfpriv.federated import distributed_dp
    _wrap(monkeypatch, distributed_dp, 'clip_l2',
          lambda original: lambda update, bound: original(update, 100.0 * bound))


def _drop_scheme(monkeypatch):
    """The registry silently loses the 'smpc' scheme."""
    from tfpriv.crypto import secagg
    monkeypatch.setattr(secagg, 'SCHEMES', tuple(s for s in secagg.SCHEMES if s != 'smpc'))


def _same_clients_each_round(monkeypatch):
    """Every fixed-size round samples the same m clients (one sample drawn, then reused)."""
    from tfpriv.federated import fedavg
    _wrap(monkeypatch, fedavg, 'sample_clients',
          lambda original: lambda num_clients, per_round, rounds, rng: np.repeat(
              original(num_clients, per_round, 1, rng), rounds, axis=0))


def _clients_with_replacement(monkeypatch):
    """A fixed-size round draws its m clients independently, with replacement."""
    from tfpriv.federated import fedavg
    monkeypatch.setattr(fedavg, 'sample_clients', lambda num_clients, per_round, rounds, rng:
                        rng.uniform_mod(num_clients, (rounds, per_round)))


def _poisson_clients_rate(monkeypatch):
    """Poisson rounds let clients join with probability 1.25 C (the accountant uses C)."""
    from tfpriv.federated import fedavg
    _wrap(monkeypatch, fedavg, 'poisson_clients',
          lambda original: lambda num_clients, fraction, rounds, rng: original(
              num_clients, min(1.0, 1.25 * fraction), rounds, rng))


def _rotation_permutation(monkeypatch):
    """partition.permutation returns a random rotation of range(n): n orders, not n!."""
    from tfpriv.federated import partition
    monkeypatch.setattr(partition, 'permutation', lambda rng, n: np.roll(
        np.arange(n), int(rng.uniform_mod(max(n, 2), 1)[0]) % max(n, 1)))


def _accounted_rate(monkeypatch):
    """DP-SGD's privacy event is built for 0.8 q (ε under-reported; the batches still use q)."""
    from tfpriv.dp import accounting
    _wrap(monkeypatch, accounting, 'dpsgd_event',
          lambda original: lambda noise_multiplier, sampling_probability, steps, *args: original(
              noise_multiplier, 0.8 * sampling_probability, steps, *args))


def _public_pairwise_seeds(monkeypatch):
    """SecAgg+ pairwise mask seeds hash the pair's public keys: they cancel and look uniform,
    but the server, which relays those keys, can compute every mask."""
    import hashlib
    from tfpriv.crypto.masking import primitives

    def make(original):
        def agree(key, peer_public, label):
            if label != primitives.MASK_LABEL:
                return original(key, peer_public, label)
            pair = sorted((primitives.public_bytes(key), peer_public))
            return hashlib.sha256(b''.join(pair)).digest()
        return agree
    _wrap(monkeypatch, primitives, 'agree', make)


def _as_seen_by(monkeypatch: pytest.MonkeyPatch, caller, dependency: str, name: str,
                make: Callable[[Callable], Callable]) -> None:
    """`caller`'s module global `dependency` becomes a proxy of that module whose `name` is
    make(original): only that caller's calls change, as a real bug at the call site would
    (the function itself, tested alone, stays right)."""
    module = getattr(caller, dependency)
    faulty = make(getattr(module, name))

    class _Proxy:
        def __getattr__(self, attribute):
            return faulty if attribute == name else getattr(module, attribute)

    monkeypatch.setattr(caller, dependency, _Proxy())


def _fixed_size_feed(monkeypatch):
    """make_private's `dataset` draws fixed-size batches of round(q n) rows while its ε is
    for Poisson sampling."""
    from tfpriv.dp import keras

    def make(original):
        del original
        def poisson_batches(x, y, sampling_probability, steps, seed=None, sample_weight=None):
            size = max(1, round(sampling_probability * keras.feeds._length(x)))  # pylint: disable=protected-access
            return keras.feeds.fixed_size_batches(x, y, size, steps, seed,
                                                  sample_weight=sample_weight)
        return poisson_batches
    _as_seen_by(monkeypatch, keras, 'feeds', 'poisson_batches', make)


def _round_half_noise(monkeypatch):
    """The central DP-FedAvg round that `fedavg.build_round` makes gets sigma / 2 from its call
    of aggregator_factory, while the run's ε is computed for sigma."""
    from tfpriv.federated import fedavg
    _as_seen_by(monkeypatch, fedavg, 'dp_fedavg', 'aggregator_factory',
                lambda original: lambda clients_per_round, noise_multiplier, *args: original(
                    clients_per_round, noise_multiplier / 2, *args))


def _teachers_carry_over(monkeypatch):
    """PATE's Trainer.reset re-draws nothing after the first teacher: teacher t starts from
    where teacher t - 1 stopped, so shard t - 1 reaches teacher t's vote."""
    from tfpriv.dp.pate.trainer import Trainer
    calls = []

    def make(original):
        def reset(self):
            if not calls:
                original(self)
            calls.append(1)
        return reset
    _wrap(monkeypatch, Trainer, 'reset', make)


def _overlapping_shards(monkeypatch):
    """PATE's partition gives each teacher its shard plus the next shard's first example."""
    from tfpriv.dp.pate import teachers

    def make(original):
        def partition(num_examples, num_teachers, rng):
            shards = original(num_examples, num_teachers, rng)
            return [np.union1d(shard, shards[(t + 1) % len(shards)][:1])
                    for t, shard in enumerate(shards)] if len(shards) > 1 else shards
        return partition
    _wrap(monkeypatch, teachers, 'partition', make)


def _replies_with_both_secrets(monkeypatch):
    """SecAgg+ neighbours answer stage 4 with their shares of both b_u and s_u of every client:
    the sum still comes out right, but the server can strip every mask off y_u."""
    from tfpriv.crypto.masking import primitives, protocol

    def reply(state, client):
        width = primitives.SHARE_BYTES
        entries = [protocol._ENTRY.pack(owner, kind)  # pylint: disable=protected-access
                   + client.held[owner][kind * width:(kind + 1) * width]
                   for owner in sorted(client.held) for kind in (0, 1)]
        return protocol._REPLY.pack(4, client.index, len(entries)) + b''.join(entries)  # pylint: disable=protected-access
    monkeypatch.setattr(protocol, '_reply', reply)


def _rounds_reseeded(monkeypatch):
    """The SecAgg+ aggregator restarts its randomness from the same seed every round: keys,
    seeds and masks repeat, so a client's masked inputs of two rounds differ by the
    difference of its updates."""
    from tfpriv.crypto.masking import secagg
    from tfpriv.rng import RandomSource

    def make(original):
        def aggregate(self, client_updates, weights=None):
            self.rng = RandomSource(seed=0, cause='the secagg-rounds-reseeded fault')
            return original(self, client_updates, weights)
        return aggregate
    _wrap(monkeypatch, secagg.MaskingAggregator, 'aggregate', make)


def _one_seed_during(monkeypatch: pytest.MonkeyPatch, cls: type, method: str, attribute: str,
                     wrap: Callable = lambda source: source) -> None:
    """cls.method runs with self.attribute = wrap(a RandomSource of seed 0): every call draws
    the same randomness (restored afterwards)."""
    from tfpriv.rng import RandomSource
    original = getattr(cls, method)

    @functools.wraps(original)
    def faulty(self, *args, **kwargs):
        saved = getattr(self, attribute)
        setattr(self, attribute, wrap(RandomSource(seed=0, cause='a fault')))
        try:
            return original(self, *args, **kwargs)
        finally:
            setattr(self, attribute, saved)

    monkeypatch.setattr(cls, method, faulty)


def _shamir_clients_one_prg(monkeypatch):
    """Every client of the Shamir aggregator draws its sharing polynomials from the same
    keystream: one holder's shares of two clients differ by the difference of their updates."""
    from tfpriv.crypto.shamir.secagg import ShamirAggregator
    from tfpriv.rng import Prg
    _one_seed_during(monkeypatch, ShamirAggregator, '_client_shares', 'prg', Prg)


def _smpc_clients_one_prg(monkeypatch):
    """Every SMPC input owner (client) gets a Prg from the same seed: parties 0..n-2 hold equal
    shares of two clients, and party n-1 the difference of their updates."""
    from tfpriv.crypto.smpc import party
    from tfpriv.rng import RandomSource
    monkeypatch.setattr(party.Cluster, 'client', lambda self, name: party.Party(
        name, RandomSource(seed=0, cause='a fault')))


def _rlwe_clients_one_prg(monkeypatch):
    """Every client of the RLWE aggregator encrypts with randomness from the same seed (same u
    and errors): two clients' c0 differ by Delta times the difference of their updates."""
    from tfpriv.crypto.rlwe.secagg import RlweAggregator
    _one_seed_during(monkeypatch, RlweAggregator, '_client_message', 'rng')


def _resume_replays(monkeypatch):
    """A resumed DP-SGD run is seeded like the first one: TensorFlow's streams restart, so the
    added epochs replay the first epochs' noise and Poisson batches."""
    from tfpriv.experiments import dpsgd
    monkeypatch.setattr(dpsgd, 'run_seed', lambda seed, epochs_done: seed)


def _noise_repeats_each_step(monkeypatch):
    """DPSGDModel draws its noise with a fixed stateless seed: the same N(0, σ²C²) draw at
    every step, which cancels in the difference of two updates."""
    import tensorflow as tf
    from tfpriv.dp.sgd import DPSGDModel

    def privatize(self, summed):
        if self.noise_multiplier > 0:
            summed += tf.random.stateless_normal(tf.shape(summed), seed=[1, 2],
                                                 stddev=self.noise_multiplier * self.l2_norm_clip)
        return summed / self.expected_batch_size
    monkeypatch.setattr(DPSGDModel, '_privatize', privatize)


def _threshold_one_shares(monkeypatch):
    """SecAgg+ clients share b_u and s_u with threshold 1 (every share is the secret), while
    the server still waits for t answers."""
    from tfpriv.crypto.masking import protocol
    _as_seen_by(monkeypatch, protocol, 'primitives', 'split_secrets',
                lambda original: lambda secrets, recipients, threshold, rng: original(
                    secrets, recipients, 1, rng))


def _shamir_aggregator_threshold_one(monkeypatch):
    """The Shamir aggregator's clients split their updates with threshold 1 (each holder gets
    the encoded update), while reconstruction still uses t holders."""
    from tfpriv.crypto.shamir import secagg
    _as_seen_by(monkeypatch, secagg, 'field', 'split_field',
                lambda original: lambda secret, threshold, num_shares, modulus, rng=None,
                xs=None: original(secret, 1, num_shares, modulus, rng, xs))


FAULTS: Dict[str, Fault] = {fault.name: fault for fault in (
    Fault('dpsgd-no-noise', 'DPSGDModel._privatize runs with noise_multiplier 0 (all clipping '
          'paths)', (KERAS,), _dpsgd_noise(0.0)),
    Fault('dpsgd-fixed-size-feed', "make_private's dataset draws fixed-size batches under "
          'Poisson accounting', ('tests/dp/test_keras.py::test_dataset_samples_as_its_epsilon_assumes',),
          _fixed_size_feed),
    Fault('dpsgd-resume-replays-randomness', 'experiments.dpsgd seeds a resumed run like the '
          'first one', ('tests/experiments/test_cli.py::test_a_resumed_run_is_reseeded_so_it_does_'
                        'not_replay_its_first_epochs',), _resume_replays),
    Fault('dpsgd-half-noise', 'DPSGDModel._privatize runs with noise_multiplier / 2',
          (KERAS + '[vectorized]',), _dpsgd_noise(0.5)),
    Fault('dpsgd-clipping-ignored', 'DPSGDModel clipped sums (all paths) clip at 100 C; the '
          'noise still uses C', (KERAS,), _dpsgd_clipping_ignored),
    Fault('dpfedavg-round-half-noise', 'federated.fedavg.build_round passes sigma / 2 to '
          'aggregator_factory (epsilon still computed for sigma)',
          ('tests/federated/test_fedavg.py::test_the_central_dp_round_that_train_builds_adds_the_'
           'noise_its_epsilon_counts',), _round_half_noise),
    Fault('dpsgd-accounted-rate-x0.8', 'dp.accounting.dpsgd_event is built for 0.8 q (the '
          'batches are drawn at q)', ('tests/dp/test_accounting.py::'
                                      'test_dpsgd_epsilon_matches_an_independent_rdp_formula',),
          _accounted_rate),
    Fault('dpsgd-poisson-rate-x1.25', 'dp.sampling.poisson_batches samples at 1.25 q (the '
          'accountant uses q)', (POISSON, POISSON_RATE), _poisson_rate(1.25)),
    Fault('dpsgd-noise-repeats-each-step', 'DPSGDModel._privatize draws the same noise at every '
          'step (a fixed stateless seed)', (KERAS + '[vectorized]',), _noise_repeats_each_step),
    Fault('dpsgd-poisson-rate-x1.1', 'dp.sampling.poisson_batches samples at 1.1 q (the '
          'accountant uses q)', (POISSON_RATE,), _poisson_rate(1.1)),
    Fault('rlwe-zero-key', 'rlwe.sampling.ternary returns zeros (secret keys, key shares, u)',
          (f'{SAMPLING}::test_ternary_is_balanced', f'{SAMPLING}::test_secret_key_is_ternary_balanced',
           f'{MULTIPARTY}::test_secret_key_shares_are_independent_uniform_ternary'),
          _rlwe_zero_key),
    Fault('rlwe-clients-one-prg', 'rlwe.secagg clients encrypt with randomness from one seed',
          ('tests/crypto/rlwe/test_threshold.py::test_each_client_encrypts_with_its_own_randomness',),
          _rlwe_clients_one_prg),
    Fault('rlwe-narrow-errors', 'rlwe.sampling.gaussian draws with sigma x 0.3/3.2',
          (f'{SAMPLING}::test_discrete_gaussian_mean_variance_and_tail',
           f'{SAMPLING}::test_encryption_noise_has_the_specified_variance',
           f'{MULTIPARTY}::test_collective_public_key_is_an_rlwe_sample_of_the_summed_secret'),
          _rlwe_narrow_errors),
    Fault('rlwe-one-bit-smudging', 'rlwe.threshold.smudging_residues draws 1-bit noise',
          (f'{MULTIPARTY}::test_smudging_noise_has_the_chosen_width',), _one_bit_smudging),
    Fault('pate-lnmax-half-noise', 'LNMax.__call__ runs with noise_eps x 2 (Laplace scale / 2)',
          ('tests/dp/pate/test_aggregation_noise.py::test_lnmax_laplace_scale_is_one_over_gamma',),
          _pate_scale('LNMax', 'noise_eps', 2.0)),
    Fault('pate-gnmax-half-sigma', 'GNMax.__call__ runs with sigma / 2 (also Confident-GNMax '
          'answers)', ('tests/dp/pate/test_aggregation_noise.py',), _pate_scale('GNMax', 'sigma', 0.5)),
    Fault('pate-teachers-carry-over', "dp.pate.trainer.Trainer.reset keeps the previous "
          "teacher's weights after the first", (TEACHERS,), _teachers_carry_over),
    Fault('pate-overlapping-shards', 'dp.pate.teachers.partition adds the next shard\'s first '
          'example to each shard', (TEACHERS, 'tests/dp/pate/test_pipeline.py::'
                                    'test_shards_are_disjoint_and_cover'), _overlapping_shards),
    Fault('pate-confident-half-sigma1', 'ConfidentGNMax.__call__ runs with sigma_threshold / 2',
          ('tests/dp/pate/test_aggregation_noise.py::'
           'test_confident_gnmax_threshold_sigma1_and_answer_sigma2',),
          _pate_scale('ConfidentGNMax', 'sigma_threshold', 0.5)),
    Fault('dirichlet-shape-9pct', 'federated.partition.dirichlet draws Dir(1.09 alpha)',
          ('tests/federated/test_partition_moments.py',), _dirichlet_shape),
    Fault('fedavg-same-clients-each-round', 'federated.fedavg.sample_clients reuses one sample '
          'of m clients in every round', (f'{CLIENTS}::test_fixed_size_rounds_are_uniform_over_all_m_subsets',
                                          f'{CLIENTS}::test_consecutive_rounds_overlap_hypergeometrically'),
          _same_clients_each_round),
    Fault('fedavg-clients-with-replacement', 'federated.fedavg.sample_clients draws the m clients '
          'with replacement', (f'{CLIENTS}::test_fixed_size_rounds_are_m_distinct_clients',),
          _clients_with_replacement),
    Fault('fedavg-poisson-clients-x1.25', 'federated.fedavg.poisson_clients lets clients join '
          'with probability 1.25 C (the accountant uses C)',
          (f'{DDGAUSS}::test_poisson_client_sampling_and_its_add_remove_epsilon',
           f'{CLIENTS}::test_the_schedule_follows_the_configured_sampling'), _poisson_clients_rate),
    Fault('partition-permutation-rotation', 'federated.partition.permutation returns a random '
          'rotation (n of the n! orders)', (f'{CLIENTS}::test_permutation_is_uniform_over_all_orders',
                                            f'{CLIENTS}::test_fixed_size_rounds_are_uniform_over_all_m_subsets'),
          _rotation_permutation),
    Fault('shamir-aggregator-threshold-one', 'shamir.secagg clients split updates 1-of-n (the '
          'server still reconstructs from t)', ('tests/crypto/shamir/test_secagg.py::test_each_holder_'
                                                'receives_a_share_on_a_polynomial_of_degree_exactly_t_minus_1',),
          _shamir_aggregator_threshold_one),
    Fault('shamir-clients-one-prg', "shamir.secagg clients draw their polynomials from one "
          'keystream', ('tests/crypto/shamir/test_secagg.py::test_each_client_draws_its_own_'
                        'sharing_polynomials',), _shamir_clients_one_prg),
    Fault('shamir-zero-coefficients', 'shamir.field.split_field with all coefficients but the '
          'secret zero', ('tests/crypto/shamir/test_sharing.py::'
                          'test_t_minus_1_shares_independent_of_secret_chi_square',
                          'tests/crypto/masking/test_primitives.py::'
                          'test_t_minus_1_shares_are_uniform_whatever_the_secret'),
          _shamir_zero_coefficients),
    Fault('secagg-no-pairwise-masks', 'masking.protocol._masked_input adds no pairwise mask',
          (f'{MASKING}::test_pairwise_masks_are_uniform_and_cancel',), _no_pairwise_masks),
    Fault('secagg-no-self-mask', 'masking: no self mask added by clients nor removed by the '
          'server', (MASKING + '::test_pairwise_masks_are_uniform_and_cancel',), _no_self_mask),
    Fault('secagg-public-pairwise-seeds', 'masking.primitives.agree derives pairwise mask seeds '
          "from the pair's public keys", (f'{MASKING}::test_each_pairwise_mask_is_keyed_by_hkdf_of_'
                                          "the_pair_s_x25519_secret",), _public_pairwise_seeds),
    Fault('secagg-replies-both-secrets', 'masking.protocol._reply sends the shares of both b_u '
          'and s_u of every neighbour', (f'{MASKING}::test_replies_never_give_the_server_both_'
                                         'secrets_of_any_client',), _replies_with_both_secrets),
    Fault('secagg-rounds-reseeded', 'masking.secagg.MaskingAggregator restarts its randomness '
          'from one seed every round', (f'{MASKING}::test_two_rounds_of_the_same_update_are_masked_'
                                        'independently',), _rounds_reseeded),
    Fault('secagg-threshold-one-shares', 'masking.protocol shares b_u and s_u 1-of-k (the '
          'server still waits for t)', (f'{MASKING}::test_each_client_shares_its_secrets_on_a_'
                                        'polynomial_of_degree_exactly_t_minus_1',), _threshold_one_shares),
    Fault('secagg-registry-drops-smpc', "crypto.secagg.SCHEMES loses 'smpc'",
          ('tests/crypto/test_secagg.py::test_registry_holds_exactly_the_five_schemes',),
          _drop_scheme),
    Fault('smpc-shares-low-bits-zero', 'smpc.sharing.split draws the n - 1 random shares with '
          'their low 16 bits zero', (SMPC_SECRECY,), _smpc_low_bits_zero),
    Fault('smpc-clients-one-prg', 'smpc.party.Cluster.client gives every input owner a Prg of '
          'one seed', ('tests/crypto/smpc/test_secagg.py::test_each_client_shares_with_its_own_'
                       'randomness',), _smpc_clients_one_prg),
    Fault('smpc-dealer-low-entropy-triples', 'smpc.dealer.Dealer.triple draws a and b with '
          'their low 16 bits zero', ('tests/crypto/smpc/test_dealer.py::'
                                     'test_arithmetic_triple_is_a_b_ab_with_uniform_independent_a_b',),
          _dealer_low_entropy_triples),
    Fault('prg-modulo-bias', 'rng.Prg.uniform_mod reduces masked words mod m without rejection',
          ('tests/test_rng.py::test_prg_output_is_uniform_chi_square',), _prg_modulo_bias),
    Fault('prg-low-entropy-key', 'rng.Prg keys AES-CTR with 16 bits of entropy (zero nonce)',
          ('tests/test_rng.py::test_prg_is_keyed_with_all_48_bytes_it_draws_from_its_source',),
          _prg_low_entropy_key),
    Fault('ddgauss-half-noise', 'federated.distributed_dp.discrete_gaussian draws each '
          "client's noise share with sigma / 2 (epsilon still computed for sigma)",
          (f'{DDGAUSS}::test_noise_of_the_decoded_sum_is_sigma_times_clip',
           f'{DDGAUSS}::test_discrete_gaussian_sampler_matches_its_pmf',
           f'{DDGAUSS}::test_discrete_gaussian_at_a_client_sized_sigma_has_gaussian_moments'),
          _ddgauss_noise(0.5)),
    Fault('ddgauss-noise-x0.9', 'federated.distributed_dp.discrete_gaussian draws with '
          'sigma x 0.9 (a 10 % shortfall of the noise the accountant counts)',
          (f'{DDGAUSS}::test_discrete_gaussian_at_a_client_sized_sigma_has_gaussian_moments',),
          _ddgauss_noise(0.9)),
    Fault('ddgauss-clipping-ignored', 'federated.distributed_dp.clip_l2 clips at 100 S (the '
          'noise is still calibrated to S)',
          (f'{DDGAUSS}::test_clipping_bound_and_unbiased_rounding',
           f'{DDGAUSS}::test_an_update_between_the_clip_and_norm_one_is_clipped'),
          _ddgauss_clipping_ignored),
    Fault('dpfedavg-half-noise', 'federated.dp_fedavg.aggregator_factory gives TFF sigma / 2 '
          '(epsilon still computed for sigma)', (DP_FEDAVG_NOISE,), _dpfedavg_noise(0.5)),
    Fault('dpfedavg-adaptive-half-noise', 'federated.dp_fedavg.aggregator_factory(adaptive=True) '
          'gives TFF sigma / 2 (epsilon still computed for sigma)', (DP_FEDAVG_ADAPTIVE,),
          _dpfedavg_noise(0.5)),
    Fault('dpfedavg-adaptive-noise-not-split', "TFF's adaptive clipping adds value noise sigma, "
          'not sigma_v = (sigma^-2 - (2 s_c)^-2)^-1/2, and still noises the count',
          (DP_FEDAVG_ADAPTIVE,), _adaptive_noise_not_split),
)}
