"""`train_teachers`: each teacher learns from its own shard only, starting afresh (issue #20).

PATE's analysis (one example changes one teacher's vote) needs two things of the loop that
trains the teachers, beyond `partition` being disjoint (`test_pipeline.py`): teacher t fits
on the rows of shard t and on no other, and it starts from fresh weights and a zeroed
optimizer, not from where teacher t - 1 stopped (otherwise t - 1's shard reaches t's vote).
A spy subclass of the real `Trainer` records what every `fit` receives and the weights
after every `reset`; rows are identified by their bytes.
"""

import numpy as np
import pytest

from tfpriv.data import load_mnist
from tfpriv.dp.pate import teachers
from tfpriv.dp.pate.trainer import Trainer
from tfpriv.rng import RandomSource


def test_each_teacher_fits_its_own_shard_from_fresh_weights(monkeypatch):
    data = load_mnist().subset(60, 10)
    x, y = data.x_train, data.y_train
    row_of = {x[i].tobytes(): i for i in range(len(x))}
    assert len(row_of) == len(x)  # distinct images, so bytes name the row
    events = []

    class Spy(Trainer):
        def _weights(self):
            return [v.numpy().copy() for v in self.model.trainable_variables]

        def reset(self):
            super().reset()
            optimizer_zero = all(not np.any(v.numpy()) for v in self._optimizer.variables)
            events.append(('reset', self._weights(), optimizer_zero))

        def fit(self, x_fit, y_fit, batches, augmentation=None):
            rows = [row_of[image.tobytes()] for image in x_fit]
            np.testing.assert_array_equal(y_fit, y[rows])
            super().fit(x_fit, y_fit, batches, augmentation)
            events.append(('fit', rows, self._weights()))

    monkeypatch.setattr(teachers, 'Trainer', Spy)
    config = teachers.TeacherConfig(num_teachers=3, model='mlp', epochs=1, batch_size=10,
                                    num_train=60, dropout=0.0)
    rng_seed = 5
    votes = teachers.train_teachers(x, y, data.x_test, config, data.num_classes,
                                    RandomSource(seed=rng_seed))
    assert votes.shape == (3, 10)
    assert [kind for kind, *_ in events] == ['reset', 'fit'] * 3
    shards = teachers.partition(len(x), 3, RandomSource(seed=rng_seed))
    seen = [rows for kind, rows, _ in events if kind == 'fit']
    assert [sorted(rows) for rows in seen] == [shard.tolist() for shard in shards]
    assert sorted(sum(seen, [])) == list(range(len(x)))  # disjoint and covering
    for t in range(3):
        _, fresh, optimizer_zero = events[2 * t]
        assert optimizer_zero
        assert all(not np.any(w) for w in fresh if w.ndim == 1)  # biases start at 0
        if t:  # no kernel carries over from the teacher before
            before = events[2 * t - 1][2]
            assert all(not np.allclose(a, b) for a, b in zip(fresh, before) if a.ndim >= 2)
