"""Character-level Chinese NER on MSRA with a bidirectional gru_cuda.GRU."""
