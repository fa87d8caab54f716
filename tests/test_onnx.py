"""ONNX export: the standard GRU operator (linear_before_reset=1), run by onnxruntime
with nn.GRU's numbers."""
import warnings

import pytest
import torch
from torch import nn

import gru_cuda
import gru_cuda.onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def export(model, args):
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, args, dynamo=True, verbose=False,
                                    custom_translation_table=gru_cuda.onnx.translation_table())
    return program.model_proto


def run(proto, args):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {n: a.numpy() for n, a in zip(names, args)})


def gru_nodes(proto):
    return [n for n in proto.graph.node if n.op_type == "GRU"]


@pytest.mark.parametrize("bidirectional,bias,batch_first", [(False, True, False),
                                                            (True, True, True),
                                                            (True, False, False)])
def test_gru_exports_as_onnx_gru_and_runs_like_nn_gru(bidirectional, bias, batch_first):
    torch.manual_seed(91)
    kwargs = dict(input_size=3, hidden_size=5, num_layers=2, bidirectional=bidirectional,
                  bias=bias, batch_first=batch_first)
    ours, theirs = gru_cuda.GRU(**kwargs).eval(), nn.GRU(**kwargs).eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 6, 3) if batch_first else torch.randn(6, 2, 3)
    h0 = torch.randn(2 * (2 if bidirectional else 1), 2, 5)
    proto = export(ours, (x, h0))
    nodes = gru_nodes(proto)
    assert len(nodes) == 2  # one per layer, both directions in it
    for node in nodes:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attributes["linear_before_reset"] == 1
        assert attributes["direction"] == (b"bidirectional" if bidirectional else b"forward")
    for got, expected in zip(run(proto, (x, h0)), theirs(x, h0)):
        torch.testing.assert_close(torch.from_numpy(got), expected.detach(), rtol=0, atol=1e-5)


def test_gru_cell_exports():
    torch.manual_seed(92)
    ours, theirs = gru_cuda.GRUCell(3, 4), nn.GRUCell(3, 4)
    theirs.load_state_dict(ours.state_dict())
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    proto = export(ours, (x, h))
    assert len(gru_nodes(proto)) == 1
    (got,) = run(proto, (x, h))
    torch.testing.assert_close(torch.from_numpy(got), theirs(x, h).detach(), rtol=0, atol=1e-5)
