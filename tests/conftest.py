import pytest
import torch

import gru_cuda  # noqa: F401  (registers the ops)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


def tolerances(dtype):
    """(rtol, atol) for comparing two correct GRU implementations."""
    if dtype == torch.float64:
        return 1e-7, 1e-10
    return 1e-4, 1e-5


def assert_close(actual, expected, dtype, what=""):
    rtol, atol = tolerances(dtype)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")
