"""The CUDA per-step path's GEMMs (input projection, the recurrent product of every step,
the gradients) through cuBLAS directly: raw pointers with PyTorch's own handle, stream and
workspace, no dispatcher or tensor ops in between, which is host time saved at every
step. float32 then runs in the precision of nn.GRU's cuDNN RNN: TF32 where
torch.backends.cudnn (rnn.fp32_precision, or allow_tf32 on an older torch) allows it, as
it does by default, full fp32 otherwise; ATen's matmul ops instead follow
torch.backends.cuda.matmul.

Compiled, not yet run on a GPU, so it is opt-in: GRU_CUDA_DIRECT_GEMM=1, or

    with gru_cuda.direct_gemm():
        out, h_n = model(x)

A GEMM whose layout cuBLAS cannot read is left to ATen (counted as declined).
"""
import torch

from ._switches import mode_within


def set_direct_gemm(enabled):
    """Switch the direct GEMMs on (True) or off (False) for the process; returns the
    previous setting."""
    return torch.ops.gru_cuda.set_direct_gemm(bool(enabled))


def direct_gemm(enabled=True):
    """The direct GEMMs on (or off) inside the block, as they were after it."""
    return mode_within(set_direct_gemm, enabled)


def counts():
    """Since the process started: calls into cuBLAS ("gemms"), of those the steps'
    recurrent products that covered both directions in one strided-batched call
    ("batched"), and GEMMs or per-step loops offered that were left to ATen
    ("declined")."""
    gemms, batched, declined = torch.ops.gru_cuda.direct_gemm_counts()
    return {"gemms": gemms, "batched": batched, "declined": declined}
