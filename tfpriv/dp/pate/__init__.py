"""PATE: Private Aggregation of Teacher Ensembles (Papernot et al., ICLR 2017 and ICLR 2018).

- `teachers`: disjoint shards of the private set, one model per shard, cached votes;
- `aggregation`: LNMax, GNMax and Confident-GNMax noisy aggregation of the votes;
- `analysis`: data-independent (dp_accounting) and data-dependent ε of the answers;
- `smooth_sensitivity`: private (publishable) release of the data-dependent ε;
- `student`: query selection on the public pool and semi-supervised student training;
- `transfer`: an optional second stage, teachers retrained as heads on the student's features;
- `trainer`: the Keras training loop (and augmentation) teachers and students share;
- `pipeline`: the MNIST pipeline end to end, `run_pate` → `PateResult`.

The `train.py --pate` flags live in `tfpriv.experiments.pate`, the figures in
`tfpriv.experiments.plotting`. Submodules load TensorFlow only when a model is trained.
"""

__all__ = ['aggregation', 'analysis', 'pipeline', 'smooth_sensitivity', 'student', 'teachers',
           'trainer', 'transfer']
