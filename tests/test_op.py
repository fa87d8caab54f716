"""The layer op itself (one or both directions, padded or packed): against the textbook
reference, forward and every gradient; gradcheck, opcheck, poisoned buffers,
determinism and the inference path."""
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from gru_cuda import _ops, reference
from conftest import assert_close

op = torch.ops.gru_cuda.gru_layer


class Layer:
    """Random inputs of one layer. Packed: rows sorted by length, as packing sorts them;
    the op gets the packed data and batch_sizes, the reference the padded rows."""

    def __init__(self, T, N, I, H, D, device, dtype, bias=True, lengths=None,
                 requires_grad=False):
        kw = {"device": device, "dtype": dtype}
        self.D, self.H, self.bias = D, H, bias
        self.padded = torch.randn(T, N, I, **kw)
        self.lengths = sorted(lengths, reverse=True) if lengths is not None else None
        self.hx = torch.randn(D, N, H, **kw)
        self.weights = []
        for _ in range(D):
            self.weights += [torch.randn(3 * H, I, **kw) * 0.5, torch.randn(3 * H, H, **kw) * 0.5]
            self.weights += [torch.randn(3 * H, **kw), torch.randn(3 * H, **kw)] if bias else []
        for t in [self.padded, self.hx, *self.weights]:
            t.requires_grad_(requires_grad)

    @property
    def packed(self):
        return self.lengths is not None

    def op_args(self):
        if self.packed:
            packed = pack_padded_sequence(self.padded, torch.tensor(self.lengths))
            x, batch_sizes = packed.data, packed.batch_sizes
        else:
            x, batch_sizes = self.padded, None
        return x, self.hx, self.weights, self.bias, self.D == 2, batch_sizes

    def leaves(self):
        return [self.padded, self.hx, *self.weights]

    def to_op_layout(self, padded_out):
        """The reference's (T, N, D*H) output in the op's layout."""
        if not self.packed:
            return padded_out
        return pack_padded_sequence(padded_out, torch.tensor(self.lengths)).data

    def reference(self):
        """Output (T, N, D*H), zero past each row's length, and h_n (D, N, H): every row
        run alone over its own length through the textbook cell."""
        T, N, _ = self.padded.shape
        lengths = self.lengths or [T] * N
        per = 4 if self.bias else 2
        outs, finals = [], []
        for d in range(self.D):
            cell = self._cell(self.weights[d * per:(d + 1) * per])
            rows, last = [], []
            for n, L in enumerate(lengths):
                x = self.padded[:L, n:n + 1]
                out, h = cell(x.flip(0) if d else x, self.hx[d, n:n + 1])
                out = out.flip(0) if d else out
                rows.append(torch.cat([out, out.new_zeros(T - L, 1, self.H)]))
                last.append(h)
            outs.append(torch.cat(rows, 1))
            finals.append(torch.cat(last))
        return torch.cat(outs, 2), torch.stack(finals)

    def _cell(self, weights):
        """The reference loop run on these weights, differentiably (functional_call)."""
        x = self.padded
        ref = reference.GRUReference(x.shape[2], self.H, device=x.device, dtype=x.dtype)
        w_ih, w_hh = weights[0].chunk(3), weights[1].chunk(3)
        b_ih, b_hh = (weights[2].chunk(3), weights[3].chunk(3)) if self.bias else \
            ([x.new_zeros(self.H)] * 3,) * 2
        params = {}
        for i, g in enumerate("rzn"):
            params.update({f"cell.W_x{g}": w_ih[i].t(), f"cell.W_h{g}": w_hh[i].t(),
                           f"cell.b_x{g}": b_ih[i], f"cell.b_h{g}": b_hh[i]})
        return lambda inputs, h0: torch.func.functional_call(ref, params, (inputs, h0))


CASES = [  # (D, bias, lengths)
    (1, True, None), (2, True, None), (1, False, None), (2, False, None),
    (1, True, [7, 3, 7, 1]), (2, True, [5, 7, 2, 7]), (2, False, [1, 1, 1, 1]),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("D,bias,lengths", CASES)
def test_op_matches_reference(device, dtype, D, bias, lengths):
    torch.manual_seed(11)
    layer = Layer(7, 4, 5, 6, D, device, dtype, bias, lengths, requires_grad=True)
    out, h_n, saved = op(*layer.op_args())
    ref_out, ref_h = layer.reference()
    ref_out = layer.to_op_layout(ref_out)
    assert_close(out, ref_out, dtype, "output")
    assert_close(h_n, ref_h, dtype, "h_n")
    assert saved.shape == (out.numel() // (D * 6), D * _ops.SAVED_BLOCKS * 6)
    w_out, w_h = torch.randn_like(out), torch.randn_like(h_n)
    ours = torch.autograd.grad((out * w_out).sum() + (h_n * w_h).sum(), layer.leaves())
    theirs = torch.autograd.grad((ref_out * w_out).sum() + (ref_h * w_h).sum(), layer.leaves())
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert_close(a, b, dtype, f"gradient of leaf {i}")


@pytest.mark.parametrize("D,bias,lengths", [(1, True, None), (2, True, None),
                                            (2, True, [4, 2, 3]), (1, False, [4, 1, 4])])
def test_gradcheck(device, D, bias, lengths):
    torch.manual_seed(13)
    layer = Layer(4, 3, 3, 3, D, device, torch.float64, bias, lengths)
    x, hx, weights, has_biases, bidirectional, batch_sizes = layer.op_args()
    inputs = [t.detach().requires_grad_() for t in (x, hx, *weights)]

    def f(x, hx, *weights):
        out, h_n, _ = op(x, hx, list(weights), has_biases, bidirectional, batch_sizes)
        return out, h_n

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("D,lengths", [(1, None), (2, None), (2, [4, 1, 3])])
def test_opcheck(device, D, lengths):
    torch.manual_seed(17)
    layer = Layer(4, 3, 5, 6, D, device, torch.float32, lengths=lengths, requires_grad=True)
    x, hx, weights, has_biases, bidirectional, batch_sizes = layer.op_args()
    if layer.packed:
        x = x.detach().requires_grad_()
    torch.library.opcheck(op, (x, hx, weights, has_biases, bidirectional, batch_sizes))
    detached = [t.detach() for t in weights]
    torch.library.opcheck(op, (x.detach(), hx.detach(), detached, has_biases, bidirectional,
                               batch_sizes, False))  # inference: nothing to differentiate
    out, h_n, saved = op(x.detach(), hx.detach(), detached, has_biases, bidirectional,
                         batch_sizes)
    for mask in ([True, True, True], [False, True, False]):
        torch.library.opcheck(torch.ops.gru_cuda.gru_layer_backward,
                              (torch.randn_like(out), torch.randn_like(h_n), x.detach(), detached,
                               has_biases, bidirectional, saved, batch_sizes, mask))


@pytest.mark.parametrize("has_biases", [True, False])
def test_cell_op(device, has_biases):
    """gru_cell is gru_layer's one step on 2-D tensors: same state, same gradients, and
    opcheck's checks (fake tensors, autograd registration) hold."""
    torch.manual_seed(23)
    layer = Layer(1, 3, 5, 6, 1, device, torch.float64, bias=has_biases, requires_grad=True)
    x, hx, weights, has_biases, _, _ = layer.op_args()
    cell = torch.ops.gru_cuda.gru_cell
    got = cell(x[0], hx[0], weights, has_biases)
    want = op(x, hx, weights, has_biases, False, None)[0][0]
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    grads = torch.autograd.grad(got.sum(), [x, hx, *weights])
    leaves = [t.detach().requires_grad_() for t in (x[0], hx[0], *weights)]
    assert torch.autograd.gradcheck(lambda *a: cell(a[0], a[1], list(a[2:]), has_biases),
                                    leaves)
    assert all(g.abs().sum() > 0 for g in grads)
    torch.library.opcheck(cell, (x[0].detach().float().requires_grad_(),
                                 hx[0].detach().float(), [w.detach().float() for w in weights],
                                 has_biases))
    with pytest.raises(RuntimeError, match="must be 2-D, got 3-D and 3-D"):
        cell(x, hx, weights, has_biases)


@pytest.mark.parametrize("D,lengths", [(1, [8, 8, 5, 3, 1]), (2, [8, 6, 5, 3, 1]), (2, None)])
def test_outputs_fully_written_over_poisoned_memory(device, D, lengths):
    """With deterministic algorithms, every empty tensor starts as NaN: an element the
    kernels fail to write, or a read of one nothing wrote, shows up as NaN."""
    torch.manual_seed(15)
    layer = Layer(8, 5, 4, 9, D, device, torch.float32, lengths=lengths, requires_grad=True)
    was = torch.are_deterministic_algorithms_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    try:
        assert torch.empty(4, device=device).isnan().all()  # the poison is on
        out, h_n, saved = op(*layer.op_args())
        grads = torch.autograd.grad(out.sum() + h_n.sum(), layer.leaves())
    finally:
        torch.use_deterministic_algorithms(was)
        torch.utils.deterministic.fill_uninitialized_memory = fill
    for what, t in [("output", out), ("h_n", h_n), ("saved", saved), *(
            (f"gradient {i}", g) for i, g in enumerate(grads))]:
        assert torch.isfinite(t).all(), what


def test_backward_is_deterministic(device):
    torch.manual_seed(16)
    layer = Layer(20, 16, 12, 24, 2, device, torch.float32,
                  lengths=torch.randint(1, 21, (16,)).tolist(), requires_grad=True)
    runs = []
    for _ in range(2):
        out, h_n, _ = op(*layer.op_args())
        runs.append(torch.autograd.grad((out * out).sum() + h_n.sum(), layer.leaves()))
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_empty_batch_and_single_step(device):
    layer = Layer(1, 2, 3, 4, 2, device, torch.float64)
    out, h_n, _ = op(*layer.op_args())
    ref_out, ref_h = layer.reference()
    assert_close(out, ref_out, torch.float64, "single step")
    assert_close(h_n, ref_h, torch.float64, "single step h_n")
    layer = Layer(3, 0, 3, 4, 2, device, torch.float64)
    out, h_n, _ = op(*layer.op_args())
    assert out.shape == (3, 0, 8) and h_n.shape == (2, 0, 4)


@pytest.mark.parametrize("gate", ["r", "n"])
@pytest.mark.parametrize("dtype,span,tolerance", [(torch.float32, 30, 1e-6),
                                                  (torch.float64, 700, 1e-14)])
def test_gate_functions_are_accurate(device, gate, dtype, span, tolerance):
    """The CPU kernels use their own vectorizable exp/tanh: check sigmoid (r) and tanh (n)
    over a wide range (in float64 up to where exp's result is still a normal number)
    against torch's in float64, through the saved gate values; and that they saturate
    exactly beyond it."""
    t = torch.cat([torch.linspace(-span, span, 100001, dtype=dtype),
                   torch.tensor([-1e4, -800.0, 800.0, 1e4], dtype=dtype)]).to(device)
    x = t.view(1, -1, 1)
    w_ih = torch.zeros(3, 1, device=device, dtype=dtype)
    w_ih[0 if gate == "r" else 2, 0] = 1.0
    w_hh = torch.zeros(3, 1, device=device, dtype=dtype)
    h0 = torch.zeros(1, t.numel(), 1, device=device, dtype=dtype)
    _, _, saved = op(x, h0, [w_ih, w_hh], False, False, None)
    got = saved.view(t.numel(), _ops.SAVED_BLOCKS)[:, _ops.SAVED_BLOCK_NAMES.index(gate)].double()
    expected = torch.sigmoid(t.double()) if gate == "r" else torch.tanh(t.double())
    rel = (got[:-4] - expected[:-4]).abs() / expected[:-4].abs().clamp_min(1e-300)
    assert rel.max() < tolerance
    saturated = [0.0, 0.0, 1.0, 1.0] if gate == "r" else [-1.0, -1.0, 1.0, 1.0]
    assert got[-4:].tolist() == saturated


@pytest.mark.parametrize("lengths", [None, [6, 2, 5, 1]])
def test_inference_path_saves_nothing_and_matches(device, lengths):
    torch.manual_seed(18)
    layer = Layer(6, 4, 5, 7, 2, device, torch.float32, lengths=lengths)
    out, h_n, saved = op(*layer.op_args(), True)
    out_inf, h_inf, saved_inf = op(*layer.op_args(), False)
    assert saved_inf.numel() == 0 and saved.shape == (out.numel() // 14, 2 * _ops.SAVED_BLOCKS * 7)
    assert torch.equal(out, out_inf) and torch.equal(h_n, h_inf)


def test_backward_after_inference_forward_is_a_clear_error(device):
    layer = Layer(3, 2, 4, 5, 1, device, torch.float32, requires_grad=True)
    out, _, _ = op(*layer.op_args(), False)
    with pytest.raises(RuntimeError, match="ran with need_backward=False"):
        out.sum().backward()
