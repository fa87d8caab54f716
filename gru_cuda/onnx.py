"""ONNX export: the op gru_cuda::gru_layer as the standard ONNX GRU operator.

    torch.onnx.export(model, (x,), "model.onnx", dynamo=True,
                      custom_translation_table=gru_cuda.onnx.translation_table())

ONNX's GRU with linear_before_reset=1 is PyTorch's ("reset after"); ONNX orders the gate
blocks z, r, h where PyTorch has r, z, n. Needs the packages onnx and onnxscript. Padded
input only: a PackedSequence's layout has no ONNX counterpart.
"""
import torch

from .plain_layer import weights_per_direction


def translation_table():
    """{op overload: ONNX Script translation} for torch.onnx.export(dynamo=True)."""
    return {torch.ops.gru_cuda.gru_layer.default: _gru_layer_to_onnx}


def _gru_layer_to_onnx(input, hx, weights, has_biases, bidirectional, batch_sizes=None,
                       need_backward=True):
    from onnxscript import opset18 as op  # noqa: PLC0415  (an optional dependency)

    if batch_sizes is not None:
        raise NotImplementedError(
            "gru_cuda: ONNX export of a PackedSequence is not supported; export with padded "
            "input (ONNX's GRU takes per-row lengths as sequence_lens)")
    hidden = int(weights[1].shape[1])
    per_direction = weights_per_direction(has_biases)

    def rows(t, block):
        return op.Slice(t, op.Constant(value_ints=[block * hidden]),
                        op.Constant(value_ints=[(block + 1) * hidden]), op.Constant(value_ints=[0]))

    def zrn(t):  # PyTorch's r, z, n row blocks in ONNX's z, r, h order (Slice, not Split,
        return op.Concat(rows(t, 1), rows(t, 0), rows(t, 2), axis=0)  # so it folds to weights

    def stacked(parts):  # one (D, ...) tensor from the directions' parts
        return op.Concat(*[op.Unsqueeze(p, op.Constant(value_ints=[0])) for p in parts], axis=0)

    directions = [weights[d * per_direction:(d + 1) * per_direction]
                  for d in range(2 if bidirectional else 1)]
    W = stacked([zrn(w[0]) for w in directions])
    R = stacked([zrn(w[1]) for w in directions])
    B = stacked([op.Concat(zrn(w[2]), zrn(w[3]), axis=0) for w in directions]) \
        if has_biases else None
    Y, Y_h = op.GRU(input, W, R, B, None, hx, hidden_size=hidden,
                    direction="bidirectional" if bidirectional else "forward",
                    linear_before_reset=1)
    # Y is (T, D, N, H); the op's output is (T, N, D*H).
    output = op.Reshape(op.Transpose(Y, perm=[0, 2, 1, 3]), op.Constant(value_ints=[0, 0, -1]))
    nothing_saved = op.ConstantOfShape(op.Constant(value_ints=[0]))  # inference keeps none
    return output, Y_h, op.CastLike(nothing_saved, input)
