"""Benchmarks of gru_cuda against torch.nn.GRU and the reference loop (bench_gru.py)."""
