"""The model zoo of `benchmarks/dp_overhead.py --zoo`: user-style Keras models and the same
architectures in PyTorch, trained non-privately and with DP-SGD (tfpriv / Opacus 1.6)."""
