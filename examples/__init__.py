"""Runnable examples built on gru_cuda."""
