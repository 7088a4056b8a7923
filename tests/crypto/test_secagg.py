"""Tests of tfpriv.crypto.secagg: the scheme registry, Faults, the update spec, the round's
input checks and the plain (insecure reference) aggregator."""

import sys
import time
from fractions import Fraction

import numpy as np
import pytest

from tfpriv.crypto import secagg
from tfpriv.crypto.secagg import (SCHEMES, Faults, PlainAggregator, SecureAggregator, UpdateSpec,
                                  check_updates, registry, scheme_class)
from tfpriv.errors import SchemeImportError
from tfpriv.federated import secure


def test_registry_holds_exactly_the_five_schemes():
    assert set(SCHEMES) == {'plain', 'shamir', 'smpc', 'rlwe', 'secagg'}
    classes = registry()
    assert set(classes) == {'plain', 'shamir', 'smpc', 'rlwe', 'secagg'}
    for name, cls in classes.items():
        assert issubclass(cls, SecureAggregator) and cls.name == name
    assert secure.available_schemes() == ['shamir', 'smpc', 'rlwe', 'secagg']
    assert secure.CHOICES == ('none', 'shamir', 'smpc', 'rlwe', 'secagg')
    assert secure.make_aggregator('secagg', num_parties=5).config.num_parties == 5
    with pytest.raises(ValueError, match='needs num_parties'):
        secure.make_aggregator('secagg')


def test_a_scheme_that_fails_to_import_raises_instead_of_vanishing(monkeypatch):
    monkeypatch.setitem(sys.modules, 'tfpriv.crypto.smpc.secagg', None)  # import now fails
    # The message names the scheme and the import's own error (sys.modules[...] = None
    # makes `import` raise ModuleNotFoundError), so the user can fix the installation.
    with pytest.raises(SchemeImportError,
                       match=r"scheme 'smpc' failed to import \(ModuleNotFoundError: .*smpc"):
        scheme_class('smpc')
    with pytest.raises(SchemeImportError):
        registry()
    with pytest.raises(SchemeImportError):
        secure.available_schemes()
    with pytest.raises(SchemeImportError):
        secure.make_aggregator('smpc')
    assert scheme_class('shamir').name == 'shamir'  # the others still load


def test_unknown_scheme_and_bad_fault_indices():
    with pytest.raises(ValueError, match='scheme must be one of'):
        scheme_class('paillier')
    with pytest.raises(ValueError, match=r'dropped_holders must be indices in \[0, 3\)'):
        Faults.indices('dropped_holders', [0, 3], 3)
    assert Faults.indices('x', [2, 0, 2], 3) == (0, 2)
    assert secagg.PlainAggregator is scheme_class('plain')


def test_update_spec_flattens_to_float64_and_names_a_shape_mismatch():
    """flatten widens every dtype to float64 (the weighted sums run in float64, not in the
    update's float32); an empty spec flattens to an empty vector; wrong shapes or lengths are
    refused with both shapes named."""
    update = [np.array([[1.5, -2.0]], np.float32), np.array([3, 4, 5], np.int32)]
    spec = UpdateSpec.of(update)
    flat = spec.flatten(update)
    assert flat.dtype == np.float64 and flat.tolist() == [1.5, -2.0, 3.0, 4.0, 5.0]
    assert UpdateSpec.of([]).flatten([]).shape == (0,)
    only_float32 = [np.array([0.1, 2.5], np.float32)]
    assert UpdateSpec.of(only_float32).flatten(only_float32).dtype == np.float64
    with pytest.raises(ValueError, match=r'^update shapes \(\(2,\),\) differ from the expected '
                                         r'\(\(1, 2\), \(3,\)\)$'):
        spec.flatten([np.zeros(2)])
    with pytest.raises(ValueError, match=r'^expected a vector of 5 values, got shape \(4,\)$'):
        spec.unflatten(np.zeros(4))
    back = spec.unflatten(flat)
    assert [a.dtype for a in back] == [np.float32, np.int32] and back[1].tolist() == [3, 4, 5]


@pytest.mark.parametrize('weights', [[1.0, -0.5], [-1.0, 2.0], [1.0, np.inf],
                                     [np.nan, 1.0], [0.0, 0.0]])
def test_weights_that_are_negative_non_finite_or_all_zero_are_refused(weights):
    updates = [[np.zeros(2)], [np.ones(2)]]
    with pytest.raises(ValueError, match='^weights must be finite, non-negative and not all zero'):
        check_updates(updates, weights)


def test_no_updates_is_refused_with_its_own_message():
    with pytest.raises(ValueError, match='^no client updates to aggregate$'):
        check_updates([])


def test_weights_are_normalized_in_float64_whatever_their_dtype():
    """float32 example counts are normalized in float64: 1/7, 2/7, 4/7 to float64's ulp
    (in float32 they would be off by ~3e-8 relative)."""
    _, normalized = check_updates([[np.zeros(1)]] * 3, np.array([1, 2, 4], np.float32))
    assert normalized.dtype == np.float64
    assert normalized.tolist() == [1 / 7, 2 / 7, 4 / 7]


def test_plain_aggregate_is_the_weighted_mean_and_reports_its_costs():
    """The mean against exact rational arithmetic (Fractions of the float inputs), and every
    cost figure: one message of 8 bytes per weight from each client, the time within the
    wall clock around the call."""
    rng = np.random.default_rng(3)
    updates = [[rng.normal(size=(2, 3)), rng.normal(size=4)] for _ in range(3)]
    weights = [1, 2, 4]
    before = time.perf_counter()
    mean, stats = PlainAggregator().aggregate(updates, weights)
    wall = time.perf_counter() - before
    for j, shape in enumerate([(2, 3), (4,)]):
        exact = [float(sum(Fraction(w, 7) * Fraction(float(u[j].ravel()[i]))
                           for w, u in zip(weights, updates)))
                 for i in range(int(np.prod(shape)))]
        np.testing.assert_allclose(mean[j].ravel(), exact, rtol=0, atol=1e-15)
    assert (stats.scheme, stats.num_clients, stats.num_dropped, stats.messages) == ('plain', 3, 0, 3)
    assert stats.bytes_per_client == 80.0 and stats.bytes_total == 240
    assert 0.0 < stats.seconds <= wall
