"""Bad input gets nn.GRU's error (or a clear one), never a crash or garbage."""
import pytest
import torch
from torch import nn

import gru_cuda

op = torch.ops.gru_cuda.gru_forward


def both(**kwargs):
    ours = gru_cuda.GRU(**kwargs)
    theirs = nn.GRU(**kwargs)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def raises_like_nn(ours, theirs, *args):
    """Our module raises the same exception type and message as nn.GRU."""
    with pytest.raises(Exception) as expected:
        theirs(*args)
    with pytest.raises(type(expected.value)) as got:
        ours(*args)
    assert str(got.value) == str(expected.value)
    return str(got.value)


@pytest.mark.parametrize("case", ["input_size", "hx_shape", "input_dim", "hx_dim_batched",
                                  "hx_dim_unbatched", "dtype"])
def test_module_errors_match_nn_gru(case):
    ours, theirs = both(input_size=4, hidden_size=5, num_layers=2)
    x = torch.randn(3, 2, 4)
    args = {
        "input_size": (torch.randn(3, 2, 6),),
        "hx_shape": (x, torch.randn(2, 3, 5)),
        "input_dim": (torch.randn(3, 2, 4, 1),),
        "hx_dim_batched": (x, torch.randn(2, 5)),
        "hx_dim_unbatched": (torch.randn(3, 4), torch.randn(2, 1, 5)),
        "dtype": (x.double(),),
    }[case]
    message = raises_like_nn(ours, theirs, *args)
    expected_words = {"input_size": "input_size", "hx_shape": "Expected hidden size",
                      "input_dim": "2D or 3D", "hx_dim_batched": "hx should also be 3-D",
                      "hx_dim_unbatched": "hx should also be 2-D", "dtype": "dtype"}[case]
    assert expected_words in message


def test_packed_input_with_wrong_hx_shape_names_the_shape():
    """nn.GRU permutes hx before checking it and fails on an index; we name the shape."""
    ours, theirs = both(input_size=4, hidden_size=5)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.randn(6, 3, 4), torch.tensor([2, 6, 4]), enforce_sorted=False)
    with pytest.raises(RuntimeError):
        theirs(packed, torch.randn(1, 2, 5))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 3, 5\), got \[1, 2, 5\]"):
        ours(packed, torch.randn(1, 2, 5))


def test_hx_dtype_mismatch_is_an_error():
    model = gru_cuda.GRU(4, 5)
    with pytest.raises(ValueError, match=r"hx dtype \(torch.float64\) does not match input dtype"):
        model(torch.randn(3, 2, 4), torch.randn(1, 2, 5, dtype=torch.float64))


def test_device_mismatch_is_an_error():
    model = gru_cuda.GRU(4, 5, device="meta")
    with pytest.raises(RuntimeError, match="input is on cpu but the GRU's parameters are on meta"):
        model(torch.randn(3, 2, 4))


@pytest.mark.parametrize("kwargs,error,match", [
    ({"dropout": 1.5}, ValueError, "dropout should be a number in range"),
    ({"dropout": True}, ValueError, "dropout should be a number in range"),
    ({"hidden_size": 0}, ValueError, "hidden_size must be greater than zero"),
    ({"num_layers": 0}, ValueError, "num_layers must be greater than zero"),
    ({"bias": 1}, TypeError, "bias should be of type bool"),
    ({"input_size": 2.0}, TypeError, "input_size should be of type int"),
])
def test_constructor_errors_match_nn_gru(kwargs, error, match):
    args = {"input_size": 3, "hidden_size": 4, **kwargs}
    with pytest.raises(error, match=match):
        nn.GRU(**args)
    with pytest.raises(error, match=match):
        gru_cuda.GRU(**args)


def test_dropout_with_one_layer_warns_like_nn_gru():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        gru_cuda.GRU(3, 4, dropout=0.2)


@pytest.mark.parametrize("args,error,match", [
    ((torch.randn(3, 6),), RuntimeError, "input has inconsistent input_size: got 6 expected 4"),
    ((torch.randn(3, 4), torch.randn(2, 5)), RuntimeError,
     "Input batch size 3 doesn't match hidden0 batch size 2"),
    ((torch.randn(3, 4), torch.randn(3, 6)), RuntimeError,
     "hidden0 has inconsistent hidden_size: got 6, expected 5"),
    ((torch.randn(3, 4, 1),), ValueError, "GRUCell: Expected input to be 1D or 2D, got 3D instead"),
    ((torch.randn(3, 4), torch.randn(1, 3, 5)), ValueError,
     "GRUCell: Expected hidden to be 1D or 2D, got 3D instead"),
    ((torch.randn(3, 4, dtype=torch.float64),), ValueError, "input dtype"),
])
def test_cell_errors(args, error, match):
    with pytest.raises(error, match=match):
        gru_cuda.GRUCell(4, 5)(*args)


def good_op_args():
    T, N, I, H = 3, 2, 4, 5
    return [torch.randn(T, N, I), torch.randn(N, H), torch.randn(3 * H, I),
            torch.randn(3 * H, H), torch.randn(3 * H), torch.randn(3 * H), False, None]


@pytest.mark.parametrize("index,bad,match", [
    # The numbers in the message must be there (a private static libstdc++ drops them).
    (0, torch.randn(3, 2), r"input must be 3-D \(T, N, I\), got 2-D"),
    (1, torch.randn(3, 5), r"hx must have shape \[2, 5\]"),
    (1, torch.randn(2, 5, dtype=torch.float64), "hx has dtype Double but input has dtype Float"),
    (2, torch.randn(15, 3), r"w_ih must have shape \[15, 4\]"),
    (3, torch.randn(14, 5), r"w_hh must have shape \[3\*H, H\]"),
    (4, torch.randn(14), r"b_ih must have shape \[15\]"),
    (7, torch.tensor([3, 1], dtype=torch.int32), "lengths must be int64"),
    (7, torch.tensor([3, 1, 2]), r"lengths must have shape \[2\] \(one per batch row\), got \[3\]"),
    (0, torch.randint(0, 3, (3, 2, 4)), "input must be floating point"),
])
def test_op_errors(index, bad, match):
    args = good_op_args()
    args[index] = bad
    with pytest.raises(RuntimeError, match=match):
        op(*args)


def test_op_accepts_non_contiguous_inputs():
    args = good_op_args()
    expected = op(*args)
    args[0] = args[0].transpose(0, 1).contiguous().transpose(0, 1)
    args[2] = args[2].t().contiguous().t()
    assert not args[0].is_contiguous() and not args[2].is_contiguous()
    for a, b in zip(op(*args), expected):
        assert torch.equal(a, b)
