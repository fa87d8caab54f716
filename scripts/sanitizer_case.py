"""A small forward+backward over every kernel path for compute-sanitizer to watch: the
per-step and the persistent kernels, float32 and bfloat16, both directions, padded and
packed, training and inference."""
import torch

import gru_cuda
from gru_cuda import persistent_kernels


def run_all():
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        model = gru_cuda.GRU(13, 37, num_layers=2, bidirectional=True, device="cuda", dtype=dtype)
        x = torch.randn(9, 5, 13, device="cuda", dtype=dtype, requires_grad=True)
        out, h_n = model(x)
        (out.float().sum() + h_n.float().sum()).backward()
        lengths = torch.tensor([9, 4, 7, 1, 3])
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, h_n = model(packed)
        (out.data.float().sum() + h_n.float().sum()).backward()
        with torch.no_grad():
            model(packed)


def main():
    run_all()
    with gru_cuda.persistent():
        run_all()
    torch.cuda.synchronize()
    print("sanitizer case: done; persistent kernels ran:", persistent_kernels.counts())


if __name__ == "__main__":
    main()
