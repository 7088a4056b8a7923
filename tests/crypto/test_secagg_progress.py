"""Every secure-aggregation backend reports its clients through the `progress` hook.

Each test records the hook's calls and checks that each label runs 0, 1, ..., m of
m, where m is the number of clients that take part in that stage (a client that
dropped is not counted), and that the average still matches the plain one.
Without a hook nothing is written to stdout or stderr.
"""

import numpy as np
import pytest

from tfpriv.crypto.masking.protocol import Dropouts
from tfpriv.crypto.masking.secagg import MaskingAggregator
from tfpriv.crypto.rlwe.params import preset
from tfpriv.crypto.rlwe.secagg import RlweAggregator
from tfpriv.crypto.secagg import Faults, PlainAggregator
from tfpriv.crypto.shamir.secagg import ShamirAggregator
from tfpriv.crypto.smpc.secagg import SmpcAggregator

CLIENTS = 5


class Recorder:
    """A `tfpriv.progress.Progress` that keeps (label, done, total) in call order."""

    def __init__(self):
        self.calls = []

    def __call__(self, label, done, total, values=None):
        self.calls.append((label, done, total))

    def labels(self):
        return list(dict.fromkeys(label for label, _, _ in self.calls))

    def of(self, label):
        return [(done, total) for name, done, total in self.calls if name == label]


def counted(total):
    return [(done, total) for done in range(total + 1)]


def make(backend, progress, dropped=()):
    """An aggregator of `backend` over CLIENTS clients; `dropped` clients never send."""
    if backend == 'shamir':
        return ShamirAggregator(progress=progress, faults=Faults(silent_clients=dropped))
    if backend == 'smpc':
        return SmpcAggregator(progress=progress)
    if backend == 'rlwe':  # the insecure toy ring keeps the test fast; the loop is the same
        return RlweAggregator(preset('toy', insecure=True), precision=8, bound=4.0,
                              kappa=0, progress=progress)
    return MaskingAggregator(CLIENTS, neighbours=4, threshold=3, progress=progress,
                             dropouts=Dropouts(after_advertise=dropped))


def client_updates():
    rng = np.random.default_rng(3)
    return [[rng.uniform(-1, 1, size=(3, 2)), rng.uniform(-1, 1, size=4)]
            for _ in range(CLIENTS)]


def check_average(average, updates, senders, tolerance):
    expected, _ = PlainAggregator().aggregate([updates[i] for i in senders])
    for got, want in zip(average, expected):
        np.testing.assert_allclose(got, want, atol=tolerance)


@pytest.mark.parametrize('backend,tolerance', [('shamir', 1e-5), ('smpc', 1e-8),
                                               ('rlwe', 2**-7), ('secagg', 1e-5)])
def test_hook_hears_every_client(backend, tolerance):
    recorder, updates = Recorder(), client_updates()
    average, _ = make(backend, recorder).aggregate(updates)
    if backend == 'secagg':
        assert recorder.labels() == ['clients: keys', 'clients: shares',
                                     'clients: masked inputs', 'clients: replies']
    else:
        assert recorder.labels() == ['clients']
    for label in recorder.labels():
        assert recorder.of(label) == counted(CLIENTS)
    check_average(average, updates, range(CLIENTS), tolerance)


@pytest.mark.parametrize('backend,label', [('shamir', 'clients'),
                                           ('secagg', 'clients: masked inputs')])
def test_hook_counts_only_the_clients_still_online(backend, label):
    recorder, updates = Recorder(), client_updates()
    average, _ = make(backend, recorder, dropped=(1,)).aggregate(updates)
    assert recorder.of(label) == counted(CLIENTS - 1)
    check_average(average, updates, [0, 2, 3, 4], 1e-5)


@pytest.mark.parametrize('backend', ['shamir', 'smpc', 'rlwe', 'secagg'])
def test_no_hook_writes_nothing(backend, capfd):
    updates = client_updates()
    average, _ = make(backend, None).aggregate(updates)
    out, err = capfd.readouterr()
    assert (out, err) == ('', '')
    check_average(average, updates, range(CLIENTS), 2**-7)
