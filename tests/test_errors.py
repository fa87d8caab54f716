"""Bad input gets nn.GRU's error (or a clear one), never a crash or garbage."""
import pytest
import torch
from torch import nn

import gru_cuda

op = torch.ops.gru_cuda.gru_layer


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
                                  "hx_dim_unbatched", "dtype", "empty_sequence",
                                  "empty_unbatched"])
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
        "empty_sequence": (torch.randn(0, 2, 4),),
        "empty_unbatched": (torch.randn(0, 4),),
    }[case]
    message = raises_like_nn(ours, theirs, *args)
    expected_words = {"input_size": "input_size", "hx_shape": "Expected hidden size",
                      "input_dim": "2D or 3D", "hx_dim_batched": "hx should also be 3-D",
                      "hx_dim_unbatched": "hx should also be 2-D", "dtype": "dtype",
                      "empty_sequence": "sequence length to be larger than 0",
                      "empty_unbatched": "sequence length to be larger than 0"}[case]
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


def good_op_args(D=1):
    T, N, I, H = 3, 2, 4, 5
    weights = []
    for _ in range(D):
        weights += [torch.randn(3 * H, I), torch.randn(3 * H, H), torch.randn(3 * H),
                    torch.randn(3 * H)]
    return [torch.randn(T, N, I), torch.randn(D, N, H), weights, True, D == 2, None]


def packed_op_args(batch_sizes):
    args = good_op_args()
    args[0] = torch.randn(sum(batch_sizes), 4)
    args[1] = torch.randn(1, batch_sizes[0], 5)
    args[5] = torch.tensor(batch_sizes)
    return args


def with_weight(index, bad, D=1):
    args = good_op_args(D)
    args[2][index] = bad
    return args


def with_arg(index, bad):
    args = good_op_args()
    args[index] = bad
    return args


@pytest.mark.parametrize("args,match", [
    # The numbers in the message must be there (a private static libstdc++ drops them).
    (with_arg(0, torch.randn(3, 2)), r"input must be 3-D \(T, N, I\), got 2-D"),
    (with_arg(0, torch.randint(0, 3, (3, 2, 4))), "input must be floating point"),
    (with_arg(1, torch.randn(1, 3, 5)), r"hx must have shape \[1, 2, 5\], got \[1, 3, 5\]"),
    (with_arg(1, torch.randn(2, 5)), r"hx must have shape \[1, 2, 5\]"),
    (with_arg(1, torch.randn(1, 2, 5, dtype=torch.float64)),
     "hx has dtype Double but input has dtype Float"),
    (with_arg(2, [torch.randn(15, 4)]), r"expected 4 weights \(w_ih, w_hh, b_ih, b_hh per "
                                        r"direction\), got 1"),
    (with_arg(4, True), r"expected 8 weights"),
    (with_weight(0, torch.randn(15, 3)),
     r"w_ih must have shape \[15, 4\] \(3\*H, input size\), got \[15, 3\]"),
    (with_weight(1, torch.randn(14, 5)), r"w_hh must have shape \[3\*H, H\], got \[14, 5\]"),
    (with_weight(2, torch.randn(14)), r"b_ih must have shape \[15\], got \[14\]"),
    (with_weight(7, torch.randn(16), D=2), r"b_hh_reverse must have shape \[15\]"),
    (with_weight(5, torch.randn(15, 6), D=2), r"w_hh_reverse must have shape \[15, 5\]"),
    (with_weight(4, torch.randn(15, 4, dtype=torch.float64), D=2),
     "w_ih_reverse has dtype Double"),
    (packed_op_args([2, 3]), r"batch_sizes must be positive and non-increasing \(a "
                             r"PackedSequence's\), got \[2, 3\]"),
    (packed_op_args([2, 0]), "batch_sizes must be positive"),
    (packed_op_args([2, 2])[:5] + [torch.tensor([2, 1])], "batch_sizes sum to 3 rows but input "
                                                          "has 4"),
    (packed_op_args([2, 1])[:5] + [torch.tensor([2, 1], dtype=torch.int32)],
     "batch_sizes must be a 1-D int64 tensor on the CPU"),
    (packed_op_args([2, 1])[:1] + [torch.randn(1, 3, 5)] + packed_op_args([2, 1])[2:],
     r"hx must have shape \[1, 2, 5\]"),
    (with_arg(0, torch.randn(5, 4)), r"input must be 3-D"),
])
def test_op_errors(args, match):
    with pytest.raises(RuntimeError, match=match):
        op(*args)


def test_op_error_for_packed_input_without_batch_sizes_and_back():
    args = packed_op_args([2, 1])
    args[0] = torch.randn(3, 2, 4)
    with pytest.raises(RuntimeError, match=r"input must be 2-D \(rows, I\) with batch_sizes"):
        op(*args)


def test_backward_checks_every_shape():
    """The backward shares the forward's checks: a w_ih of the wrong width, or a saved
    workspace of the wrong size, is an error, not uninitialised memory."""
    args = good_op_args()
    out, h_n, saved = op(*args)
    x, _, weights, has_biases, bidirectional, batch_sizes = args
    backward = torch.ops.gru_cuda.gru_layer_backward
    good = [torch.randn_like(out), torch.randn_like(h_n), x, weights, has_biases, bidirectional,
            saved, batch_sizes, [True, True, True]]
    backward(*good)  # fine
    for index, bad, match in [
            (3, [torch.randn(15, 3)] + weights[1:], r"w_ih must have shape \[15, 4\]"),
            (0, torch.randn(3, 2, 6), r"grad_output must have shape \[3, 2, 5\]"),
            (1, torch.randn(1, 2, 6), r"grad_hn must have shape \[1, 2, 5\]"),
            (6, saved[:, :-1], r"saved must have shape \[6, 25\]"),
            (6, saved.double(), "saved has dtype Double")]:
        call = list(good)
        call[index] = bad
        with pytest.raises(RuntimeError, match=match):
            backward(*call)


def test_meta_argument_among_cpu_ones_is_an_error():
    """A meta tensor mixed with CPU ones routes to the fake kernel, which must not return
    uninitialised CPU tensors."""
    for index in (0, 1):
        args = good_op_args()
        args[index] = args[index].to("meta")
        with pytest.raises(RuntimeError, match=r"is on (meta|cpu) but input is on (cpu|meta)"):
            op(*args)
    args = good_op_args()
    args[2][1] = args[2][1].to("meta")
    with pytest.raises(RuntimeError, match=r"weights\[1\] is on meta but input is on cpu|w_hh is "
                                           r"on meta"):
        op(*args)


def test_op_accepts_non_contiguous_inputs():
    args = good_op_args()
    expected = op(*args)
    args[0] = args[0].transpose(0, 1).contiguous().transpose(0, 1)
    args[1] = args[1].transpose(1, 2).contiguous().transpose(1, 2)
    args[2] = [w.t().contiguous().t() if w.dim() == 2 else w for w in args[2]]
    assert not args[0].is_contiguous() and not args[1].is_contiguous()
    assert not args[2][0].is_contiguous() and not args[2][1].is_contiguous()
    for a, b in zip(op(*args), expected):
        assert torch.equal(a, b)


def test_proj_size_is_refused_as_nn_gru_refuses_it():
    for kwargs in ({"proj_size": 2}, {"proj_size": 0}):
        with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
            nn.GRU(3, 4, **kwargs)
        with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
            gru_cuda.GRU(3, 4, **kwargs)
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        gru_cuda.GRU(3, 4, 1, True, False, 0.0, False, 2)
    assert gru_cuda.GRU(3, 4, 1, True, False, 0.0, False, 0).hidden_size == 4  # nn.GRU's order


@pytest.mark.parametrize("mode", ["meta", "fake"])
def test_meta_and_fake_tensors_meet_the_same_checks(mode):
    """The meta kernel (what FakeTensor and torch.compile run) checks as the real ones."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    def bad_calls():
        args = good_op_args()
        yield with_arg(1, torch.randn(1, 3, 5)), r"hx must have shape \[1, 2, 5\]"
        yield with_arg(4, True), r"expected 8 weights"  # bidirectional, one direction's
        yield with_weight(2, torch.randn(14)), r"b_ih must have shape \[15\]"
        yield [args[0], args[1], args[2][:3], True, False, None], r"expected 4 weights .* got 3"

    for args, match in bad_calls():
        if mode == "meta":
            args = [a.to("meta") if isinstance(a, torch.Tensor) else
                    [w.to("meta") for w in a] if isinstance(a, list) else a for a in args]
            with pytest.raises(RuntimeError, match=match):
                op(*args)
        else:
            with FakeTensorMode() as fake:
                args = [fake.from_tensor(a) if isinstance(a, torch.Tensor) else
                        [fake.from_tensor(w) for w in a] if isinstance(a, list) else a
                        for a in args]
                with pytest.raises(RuntimeError, match=match):
                    op(*args)


def test_meta_batch_sizes_with_real_tensors_is_an_error():
    """Dispatch sends such a call to the meta kernel: it must not return uninitialised
    CPU memory."""
    with pytest.raises(RuntimeError, match="batch_sizes must be a 1-D int64 tensor on the CPU"):
        op(torch.randn(6, 2), torch.randn(1, 3, 5), [torch.randn(15, 2), torch.randn(15, 5)],
           False, False, torch.tensor([3, 2, 1], device="meta"))
