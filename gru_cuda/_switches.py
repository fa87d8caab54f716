"""The shape the CUDA paths' process-wide switches share: a mode out of a few (False,
True, and one named mode), set through an op that returns the previous one."""
import contextlib


def set_mode(op, modes, what, value):
    """Sets the switch behind op to value, one of modes; returns the previous value."""
    if value not in modes:
        choices = ", ".join(repr(m) for m in modes)
        raise ValueError(f"gru_cuda: {what} mode must be one of {choices}, got {value!r}")
    index = modes.index(value) if isinstance(value, str) else int(bool(value))
    return modes[op(index)]


@contextlib.contextmanager
def mode_within(setter, value):
    """value inside the block, the previous setting after it."""
    previous = setter(value)
    try:
        yield
    finally:
        setter(previous)
