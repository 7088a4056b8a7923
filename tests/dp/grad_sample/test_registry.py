"""The layer registry: what `register` records and which layers `entry_for` trusts."""

import tensorflow as tf

from tfpriv.dp.grad_sample.registry import REGISTRY, Entry, entry_for, register


def test_register_records_the_sampler_and_the_problem_check_for_every_type():
    class First(tf.keras.layers.Layer):
        pass

    class Second(tf.keras.layers.Layer):
        pass

    class OwnCall(First):
        def call(self, inputs):  # overrides the registered base's call: not trusted
            return inputs

    def sampler(layer, recorder, inputs):
        return inputs

    def problem(layer):
        return f'{layer.name} is refused'

    try:
        assert register(First, Second, problem=problem)(sampler) is sampler
        assert REGISTRY[First] == REGISTRY[Second] == Entry(sampler, problem)
        assert entry_for(Second(name='s')).problem(Second(name='s')) == 's is refused'
        assert entry_for(OwnCall()) is None
        assert register(Second)(sampler) is sampler and REGISTRY[Second] == Entry(sampler, None)
    finally:
        REGISTRY.pop(First, None)
        REGISTRY.pop(Second, None)
