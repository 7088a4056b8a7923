"""Tests of the scheme registry and of Faults in tfpriv.crypto.secagg."""

import sys

import pytest

from tfpriv.crypto import secagg
from tfpriv.crypto.secagg import SCHEMES, Faults, SecureAggregator, registry, scheme_class
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
