"""gru_cuda.GRU against torch.nn.GRU with the same state_dict: outputs, h_n and every
gradient, over the module's whole argument space."""
import itertools

import pytest
import torch
from torch import nn
import torch.nn.utils.prune  # noqa: F401  (a module torch does not import itself)
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import gru_cuda
from conftest import assert_close


def make_pair(device, dtype, **kwargs):
    ours = gru_cuda.GRU(**kwargs, device=device, dtype=dtype)
    theirs = nn.GRU(**kwargs, device=device, dtype=dtype)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def run_and_grad(module, x, hx, seed, leaves):
    """Forward, then backward of a random projection of both outputs."""
    out, h_n = module(x, hx) if hx is not None else module(x)
    data = out.data if isinstance(out, nn.utils.rnn.PackedSequence) else out
    gen = torch.Generator(device="cpu").manual_seed(seed)
    w_out = torch.randn(data.shape, generator=gen, dtype=data.dtype).to(data.device)
    w_h = torch.randn(h_n.shape, generator=gen, dtype=data.dtype).to(data.device)
    loss = (data * w_out).sum() + (h_n * w_h).sum()
    grads = torch.autograd.grad(loss, leaves + list(module.parameters()), retain_graph=True)
    return data, h_n, grads


def check_pair(ours, theirs, x, hx, dtype, leaves=None):
    if leaves is None:
        leaves = [t for t in (x, hx) if t is not None]
    o1, h1, g1 = run_and_grad(ours, x, hx, 1, leaves)
    o2, h2, g2 = run_and_grad(theirs, x, hx, 1, leaves)
    assert_close(o1, o2, dtype, "output")
    assert_close(h1, h2, dtype, "h_n")
    assert len(g1) == len(g2)
    for i, (a, b) in enumerate(zip(g1, g2)):
        assert_close(a, b, dtype, f"gradient {i}")


GRID = list(itertools.product([1, 2, 3], [False, True], [False, True], [True, False], [True, False]))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias,hx_given", GRID)
def test_gru_matches_nn_gru(device, dtype, num_layers, bidirectional, batch_first, bias, hx_given):
    torch.manual_seed(num_layers * 16 + bidirectional * 8 + batch_first * 4 + bias * 2 + hx_given)
    T, N, I, H = 7, 3, 5, 6
    ours, theirs = make_pair(device, dtype, input_size=I, hidden_size=H, num_layers=num_layers,
                             bias=bias, batch_first=batch_first, bidirectional=bidirectional)
    shape = (N, T, I) if batch_first else (T, N, I)
    x = torch.randn(shape, device=device, dtype=dtype, requires_grad=True)
    D = 2 if bidirectional else 1
    hx = (torch.randn(num_layers * D, N, H, device=device, dtype=dtype, requires_grad=True)
          if hx_given else None)
    check_pair(ours, theirs, x, hx, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_input(device, dtype, batch_first):
    torch.manual_seed(3)
    ours, theirs = make_pair(device, dtype, input_size=4, hidden_size=5, num_layers=2,
                             bidirectional=True, batch_first=batch_first)
    x = torch.randn(6, 4, device=device, dtype=dtype, requires_grad=True)
    hx = torch.randn(4, 5, device=device, dtype=dtype, requires_grad=True)
    check_pair(ours, theirs, x, hx, dtype)
    out, h_n = ours(x)
    assert out.shape == (6, 10) and h_n.shape == (4, 5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_sequence(device, dtype, enforce_sorted, bidirectional):
    torch.manual_seed(4)
    lengths = [9, 7, 7, 3, 1] if enforce_sorted else [3, 9, 1, 7, 5]
    T, N, I, H = max(lengths), len(lengths), 4, 6
    ours, theirs = make_pair(device, dtype, input_size=I, hidden_size=H, num_layers=2,
                             bidirectional=bidirectional)
    padded = torch.randn(T, N, I, device=device, dtype=dtype, requires_grad=True)
    D = 2 if bidirectional else 1
    hx = torch.randn(2 * D, N, H, device=device, dtype=dtype, requires_grad=True)
    packed = pack_padded_sequence(padded, torch.tensor(lengths), enforce_sorted=enforce_sorted)
    check_pair(ours, theirs, packed, hx, dtype, leaves=[padded, hx])

    out, h_n = ours(packed, hx)
    ref_out, ref_h = theirs(packed, hx)
    assert torch.equal(out.batch_sizes, ref_out.batch_sizes)
    for a, b in ((out.sorted_indices, ref_out.sorted_indices),
                 (out.unsorted_indices, ref_out.unsorted_indices)):
        assert (a is None and b is None) or torch.equal(a, b)
    unpacked, out_lengths = pad_packed_sequence(out)
    assert out_lengths.tolist() == lengths
    assert_close(unpacked, pad_packed_sequence(ref_out)[0], dtype, "unpacked output")


@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("hx_given", [False, True])
def test_packed_layers_directions_and_extreme_lengths(device, num_layers, bidirectional,
                                                     batch_first, hx_given):
    """Lengths of 1 and of T side by side, unsorted, every layer and direction count."""
    torch.manual_seed(40 + num_layers * 8 + bidirectional * 4 + batch_first * 2 + hx_given)
    lengths = [1, 8, 3, 8, 1, 5]
    T, N, I, H = max(lengths), len(lengths), 3, 5
    ours, theirs = make_pair(device, torch.float64, input_size=I, hidden_size=H,
                             num_layers=num_layers, bidirectional=bidirectional,
                             batch_first=batch_first)
    shape = (N, T, I) if batch_first else (T, N, I)
    padded = torch.randn(shape, device=device, dtype=torch.float64, requires_grad=True)
    D = 2 if bidirectional else 1
    hx = torch.randn(num_layers * D, N, H, device=device, dtype=torch.float64,
                     requires_grad=True) if hx_given else None
    packed = pack_padded_sequence(padded, torch.tensor(lengths), batch_first=batch_first,
                                  enforce_sorted=False)
    check_pair(ours, theirs, packed, hx, torch.float64,
               leaves=[padded] + ([hx] if hx_given else []))


def test_packed_sequence_without_hx(device):
    torch.manual_seed(5)
    ours, theirs = make_pair(device, torch.float64, input_size=3, hidden_size=4)
    padded = torch.randn(6, 4, 3, device=device, dtype=torch.float64, requires_grad=True)
    packed = pack_padded_sequence(padded, torch.tensor([2, 6, 4, 1]), enforce_sorted=False)
    check_pair(ours, theirs, packed, None, torch.float64, leaves=[padded])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_long_sequence(device, dtype):
    torch.manual_seed(6)
    ours, theirs = make_pair(device, dtype, input_size=8, hidden_size=16, bidirectional=True)
    x = torch.randn(1200, 2, 8, device=device, dtype=dtype, requires_grad=True)
    check_pair(ours, theirs, x, None, dtype)


def test_dropout_between_layers(device):
    torch.manual_seed(7)
    model = gru_cuda.GRU(4, 5, num_layers=3, dropout=0.5, device=device, dtype=torch.float64)
    reference = nn.GRU(4, 5, num_layers=3, dropout=0.5, device=device, dtype=torch.float64)
    reference.load_state_dict(model.state_dict())
    x = torch.randn(6, 3, 4, device=device, dtype=torch.float64)
    model.train()
    a, _ = model(x)
    b, _ = model(x)
    assert not torch.equal(a, b), "dropout must act in training"
    model.eval()
    reference.eval()
    assert_close(model(x)[0], reference(x)[0], torch.float64, "eval output")
    assert_close(model(x)[0], model(x)[0], torch.float64, "eval is deterministic")


def test_same_seed_same_initial_weights():
    torch.manual_seed(8)
    ours = gru_cuda.GRU(5, 7, num_layers=2, bidirectional=True)
    torch.manual_seed(8)
    theirs = nn.GRU(5, 7, num_layers=2, bidirectional=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, v in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v), k


def test_state_dict_round_trip_is_strict():
    ours = gru_cuda.GRU(3, 4, num_layers=2, bidirectional=True, bias=False)
    theirs = nn.GRU(3, 4, num_layers=2, bidirectional=True, bias=False)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    assert [[p.shape for p in layer] for layer in ours.all_weights] == \
        [[p.shape for p in layer] for layer in theirs.all_weights]
    assert repr(ours).split("(", 1)[1] == repr(theirs).split("(", 1)[1]


def test_no_grad_forward_equals_training_forward(device):
    torch.manual_seed(9)
    model = gru_cuda.GRU(4, 6, num_layers=2, bidirectional=True, device=device)
    x = torch.randn(8, 3, 4, device=device)
    out, h_n = model(x)
    with torch.no_grad():
        out_ng, h_ng = model(x)
    with torch.inference_mode():
        out_inf, h_inf = model(x)
    assert out.requires_grad and not out_ng.requires_grad
    for a, b in ((out_ng, out), (h_ng, h_n), (out_inf, out), (h_inf, h_n)):
        assert torch.equal(a, b.detach())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_non_finite_values_propagate_as_in_nn_gru(device, dtype):
    """An inf in the state reaches the gates as +-inf: sigmoid(-inf) must be exactly 0
    (so that 0 * inf is NaN, as in nn.GRU), tanh(+-inf) exactly +-1; NaN stays NaN."""
    for seed in range(40):
        torch.manual_seed(seed)
        ours = gru_cuda.GRU(2, 3, device=device, dtype=dtype)
        theirs = nn.GRU(2, 3, device=device, dtype=dtype)
        with torch.no_grad():
            ours.weight_hh_l0[:, 1:] = 0  # only unit 0 feeds the gates: +-inf, never 0 * inf
        theirs.load_state_dict(ours.state_dict())
        x = torch.randn(2, 1, 2, device=device, dtype=dtype)
        special = [float("inf"), -float("inf"), float("nan")][seed % 3]
        h = torch.tensor([[[special, 0.3, -0.2]]], device=device, dtype=dtype)
        with torch.no_grad():
            got, expected = ours(x, h)[0], theirs(x, h)[0]
        assert torch.equal(got.isnan(), expected.isnan()), (seed, got, expected)
        finite = ~expected.isnan()
        torch.testing.assert_close(got[finite], expected[finite])


def _weight_norm(module, name):
    torch.nn.utils.parametrizations.weight_norm(module, name)


def _spectral_norm(module, name):
    """In eval mode: in training its power iteration steps at every read of the weight,
    and nn.GRU reads each weight twice a call where we read it once."""
    torch.manual_seed(7)  # its power iteration's random start, the same for both
    torch.nn.utils.parametrizations.spectral_norm(module, name)
    module.eval()


def _prune(module, name):
    torch.manual_seed(8)
    torch.nn.utils.prune.random_unstructured(module, name, amount=0.4)


@pytest.mark.parametrize("change", [_weight_norm, _spectral_norm, _prune])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_computed_weights_as_nn_gru_takes_them(device, dtype, change):
    """Weights computed at each call (parametrizations, pruning) are read as nn.GRU reads
    them: the same outputs and gradients of the stored parameters."""
    ours, theirs = make_pair(device, dtype, input_size=5, hidden_size=6, num_layers=2,
                             bidirectional=True)
    for module in (ours, theirs):
        change(module, "weight_hh_l0")
        change(module, "weight_ih_l1_reverse")
    x = torch.randn(4, 3, 5, device=device, dtype=dtype, requires_grad=True)
    check_pair(ours, theirs, x, None, dtype)


@pytest.mark.parametrize("change", [_weight_norm, _spectral_norm, _prune])
def test_cell_computed_weights_as_nn_gru_cell_takes_them(device, change):
    ours = gru_cuda.GRUCell(5, 6, device=device, dtype=torch.float64)
    theirs = nn.GRUCell(5, 6, device=device, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())
    for module in (ours, theirs):
        change(module, "weight_hh")
    x = torch.randn(3, 5, device=device, dtype=torch.float64, requires_grad=True)
    h = torch.randn(3, 6, device=device, dtype=torch.float64, requires_grad=True)
    got, expected = ours(x, h), theirs(x, h)
    assert_close(got, expected, torch.float64, "h'")
    for a, b in zip(torch.autograd.grad(got.sum(), [x, h, *ours.parameters()]),
                    torch.autograd.grad(expected.sum(), [x, h, *theirs.parameters()])):
        assert_close(a, b, torch.float64, "gradient")


def test_a_data_parallel_replica_reads_its_weights_as_attributes():
    """nn.DataParallel's replicas hold no parameters: each weight is a plain attribute, a
    copy of the original's (the replica made here on the CPU as replicate() makes it)."""
    ours, theirs = make_pair("cpu", torch.float64, input_size=5, hidden_size=6, num_layers=2)
    replicas = []
    for module in (ours, theirs):
        replica = module._replicate_for_data_parallel()
        for name, param in module.named_parameters():
            setattr(replica, name, param * 1.0)  # non-leaf, as replicate()'s copies
        replicas.append(replica)
    x = torch.randn(4, 3, 5, dtype=torch.float64)
    for a, b in zip(replicas[0](x), replicas[1](x)):
        assert_close(a, b, torch.float64)
