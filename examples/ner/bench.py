"""Training-step speed of the two GRU backends, interleaved on the same batches.

Whole-epoch times on a shared machine are noisy; alternating short rounds of
the two backends lets both see the same background load.

    python -m examples.ner.bench --limit 3000 --rounds 3 --crf
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from examples.ner import data  # noqa: E402
from examples.ner.model import BACKENDS, Tagger  # noqa: E402


def one_pass(model, opt, encoded, batches):
    """Seconds for one training pass over the given batches."""
    model.train()
    start = time.perf_counter()
    for idx in batches:
        x, y, mask, lengths = data.collate(encoded, idx)
        loss = model.loss(model.emissions(x, lengths), y, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    return time.perf_counter() - start


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=data.default_data_dir())
    p.add_argument("--limit", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--embed-size", type=int, default=128)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--crf", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    train = data.read_bio(a.data_dir / data.TRAIN_FILE)[:a.limit]
    enc = data.Encoder(data.build_vocab(train), data.build_tags(data.entity_types(train)))
    encoded = [enc.encode(c) for s in train for c in data.split_long(s, 100)]
    chars = sum(len(c) for c, _ in encoded)
    batches = data.make_batches(encoded, a.batch_size, shuffle=True, seed=1)
    models = {}
    for b in a.backends:
        torch.manual_seed(1)
        m = Tagger(len(enc.vocab), len(enc.tags), a.embed_size, a.hidden_size,
                   a.layers, 0.3, a.crf, backend=b)
        models[b] = (m, torch.optim.Adam(m.parameters(), lr=1e-3))
    times = {b: [] for b in a.backends}
    for r in range(a.rounds):
        for b in (a.backends if r % 2 == 0 else a.backends[::-1]):
            times[b].append(one_pass(*models[b], encoded, batches))
    for b, ts in times.items():
        med = statistics.median(ts)
        print(f"{b:<9} median {med:6.2f} s per pass of {chars} chars "
              f"({chars / med:,.0f} chars/s); all: {', '.join(f'{t:.2f}' for t in ts)}")


if __name__ == "__main__":
    main()
