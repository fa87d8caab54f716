"""Train the MSRA character NER tagger.

    python -m examples.ner.train --crf --time-budget 20 --epochs 40   # RESULTS.md's recipe
    python examples/ner/train.py --backend nn --limit 2000
"""
import argparse
import json
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from examples.ner import data  # noqa: E402
from examples.ner.metrics import format_scores, score  # noqa: E402
from examples.ner.model import BACKENDS, Tagger  # noqa: E402
from examples.ner.plots import save_curves  # noqa: E402
from examples.ner.stats import corpus_stats, format_stats, save_length_histogram  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=data.default_data_dir(),
                   help=f"folder with {data.TRAIN_FILE} and {data.TEST_FILE} "
                        f"(default: ${data.DATA_DIR_VARIABLE}, else examples/ner/data once "
                        "prepare has filled it)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--embed-size", type=int, default=128)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--schedule", choices=("linear", "constant"), default="linear",
                   help="linear: decay the lr to 5%% of --lr over all steps")
    p.add_argument("--clip", type=float, default=5.0, help="gradient norm clip (0: off)")
    p.add_argument("--max-len", type=int, default=100,
                   help="split longer training sentences into chunks (never dropped)")
    p.add_argument("--crf", action="store_true", help="CRF output layer (pytorch-crf)")
    p.add_argument("--bigram-min-count", type=int, default=3,
                   help="char bigram embeddings beside the char ones, for bigrams seen at "
                        "least this often in training (0: none, the recipe before 2026-12)")
    p.add_argument("--bigram-embed-size", type=int, default=64)
    p.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                   help="stop before an epoch that would end past this much training time; "
                        "the learning rate then decays over the time, not the epochs")
    p.add_argument("--dev-size", type=int, default=0,
                   help="hold out the last N training sentences and score those each epoch "
                        "instead of the test set (for choosing a recipe)")
    p.add_argument("--backend", choices=BACKENDS, default="gru_cuda")
    p.add_argument("--device", default="auto", help="auto: cuda when available")
    # On a small machine, OpenMP threads that wait for a core held by another process
    # can be 10x-40x slower than one thread: use --threads 1 on a busy machine.
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N training sentences (quick runs)")
    p.add_argument("--test-limit", type=int, default=None,
                   help="evaluate on only the first N test sentences")
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--out-dir", type=Path, default=None,
                   help="default: examples/ner/runs/<backend>")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm bar")
    args = p.parse_args(argv)
    if args.data_dir is None:
        p.error(f"no --data-dir given, ${data.DATA_DIR_VARIABLE} unset and examples/ner/data "
                "empty; run `python -m examples.ner.prepare --out examples/ner/data` first")
    if args.out_dir is None:
        args.out_dir = Path(__file__).resolve().parent / "runs" / args.backend
    return args


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def evaluate(model, encoded, gold_tags, tags, batch_size, device):
    """Test loss per char and entity scores; batches sorted by length for speed."""
    model.eval()
    pred = [None] * len(encoded)
    loss_sum = chars = 0
    with torch.no_grad():
        for idx in data.make_batches(encoded, batch_size, shuffle=False):
            x, y, mask, lengths = (t.to(device) for t in data.collate(encoded, idx))
            em = model.emissions(x, lengths)
            n = int(mask.sum())
            loss_sum += float(model.loss(em, y, mask)) * n
            chars += n
            for i, best in zip(idx, model.decode(em, mask)):
                pred[i] = [tags[t] for t in best]
    return loss_sum / max(chars, 1), score(gold_tags, pred)


def train_epoch(model, opt, sched, encoded, args, epoch, device):
    model.train()
    batches = data.make_batches(encoded, args.batch_size, shuffle=True,
                                seed=args.seed, epoch=epoch)
    total_chars = sum(len(c) for c, _ in encoded)
    bar = tqdm(total=total_chars, unit="char", unit_scale=True, desc=f"epoch {epoch}",
               disable=args.no_progress, leave=False, mininterval=2)
    loss_sum = seen = 0
    start = time.perf_counter()
    for idx in batches:
        x, y, mask, lengths = (t.to(device) for t in data.collate(encoded, idx))
        loss = model.loss(model.emissions(x, lengths), y, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        sched.step()
        n = int(lengths.sum())
        loss_sum += loss.item() * n
        seen += n
        bar.update(n)
        bar.set_postfix(loss=f"{loss_sum / seen:.4f}",
                        chars_s=f"{seen / (time.perf_counter() - start):.0f}")
    bar.close()
    return loss_sum / seen, time.perf_counter() - start


def make_scheduler(opt, args, steps, clock=None):
    """clock: with a time budget, the fraction of it spent so far (else steps count)."""
    if args.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    # a short warm-up, then linear decay: a fixed small budget of epochs (or of time)
    # benefits from ending at a small learning rate.
    warm = max(1, steps // 50)
    done = clock or (lambda s: s / steps)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, 1.0 - 0.95 * min(done(s), 1.0)))


def run(args):
    """Train and evaluate; returns the summary also written to log.json."""
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run(args)
    finally:  # callers such as tests keep their own thread setting
        torch.set_num_threads(threads)


def _run(args):
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    args.out_dir.mkdir(parents=True, exist_ok=True)

    train, test = data.load_corpus(args.data_dir, args.limit, args.test_limit)
    stats = {"train": corpus_stats(train), "test": corpus_stats(test)}
    for name, st in stats.items():
        print(format_stats(name, st))
    save_length_histogram({"train": train, "test": test}, args.out_dir / "lengths.png")

    tags = data.build_tags(data.entity_types(train + test))
    if args.dev_size:  # choose a recipe on held-out training text; the test set waits
        train, test = train[:-args.dev_size], train[-args.dev_size:]
    vocab = data.build_vocab(train)
    bigram_vocab = data.build_bigram_vocab(train, args.bigram_min_count) \
        if args.bigram_min_count > 0 else None
    enc = data.Encoder(vocab, tags, bigram_vocab)
    chunks = [c for s in train for c in data.split_long(s, args.max_len)]
    train_enc = [enc.encode(s) for s in chunks]
    test_enc = [enc.encode(s) for s in test]
    gold = [t for _, t in test]
    print(f"vocab {len(vocab)} chars" + (f", {len(bigram_vocab)} bigrams" if bigram_vocab
                                        else "")
          + f", tags {tags}, {len(chunks)} training chunks (max-len {args.max_len}), "
          f"{'dev' if args.dev_size else 'test'} {len(test)} sentences, device {device}, "
          f"backend {args.backend}")

    config = {"vocab_size": len(vocab), "num_tags": len(tags),
              "embed_size": args.embed_size, "hidden_size": args.hidden_size,
              "layers": args.layers, "dropout": args.dropout, "crf": args.crf,
              "bigram_vocab_size": len(bigram_vocab) if bigram_vocab else 0,
              "bigram_embed_size": args.bigram_embed_size if bigram_vocab else 0}
    model = Tagger(**config, backend=args.backend).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = args.epochs * len(data.make_batches(train_enc, args.batch_size, False))
    trained_s = 0.0  # training time so far, evaluation excluded
    clock = None
    if args.time_budget:
        epoch_start = [time.perf_counter()]
        clock = (lambda s: (trained_s + time.perf_counter() - epoch_start[0])  # noqa: E731
                 / (60 * args.time_budget))
    sched = make_scheduler(opt, args, steps, clock)

    log, best = [], None
    for epoch in range(1, args.epochs + 1):
        if args.time_budget:
            if log and trained_s + log[-1]["epoch_time_s"] > 60 * args.time_budget:
                print(f"time budget of {args.time_budget} min reached after epoch {epoch - 1}")
                break
            epoch_start[0] = time.perf_counter()
        train_loss, train_time = train_epoch(model, opt, sched, train_enc, args,
                                             epoch, device)
        trained_s += train_time
        t0 = time.perf_counter()
        test_loss, scores = evaluate(model, test_enc, gold, tags,
                                     args.eval_batch_size, device)
        entry = {"epoch": epoch, "train_loss": train_loss, "test_loss": test_loss,
                 "epoch_time_s": train_time, "trained_min": trained_s / 60,
                 "eval_time_s": time.perf_counter() - t0,
                 "chars_per_s": sum(len(c) for c, _ in train_enc) / train_time,
                 "lr": sched.get_last_lr()[0], "test": scores,
                 "scored_on": "dev" if args.dev_size else "test"}
        log.append(entry)
        print(f"epoch {epoch}: train loss {train_loss:.4f}, test loss {test_loss:.4f}, "
              f"micro F1 {scores['micro']['f1']:.4f}, {train_time:.1f} s train, "
              f"{entry['eval_time_s']:.1f} s eval")
        print(format_scores(scores))
        checkpoint = {"model": {k: v.cpu() for k, v in model.state_dict().items()},
                      "vocab": vocab, "bigrams": bigram_vocab, "tags": tags, "config": config,
                      "backend": args.backend, "epoch": epoch, "test": scores,
                      "args": {k: str(v) if isinstance(v, Path) else v
                               for k, v in vars(args).items()}}
        torch.save(checkpoint, args.out_dir / "last.pt")  # a run cut off keeps its epochs
        if best is None or scores["micro"]["f1"] > best["test"]["micro"]["f1"]:
            best = entry
            torch.save(checkpoint, args.out_dir / "best.pt")
        summary = {"args": {k: str(v) if isinstance(v, Path) else v
                            for k, v in vars(args).items()},
                   "corpus": stats, "epochs": log, "best_epoch": best["epoch"]}
        (args.out_dir / "log.json").write_text(json.dumps(summary, indent=1))
        save_curves(log, args.out_dir / "curves.png")
    print(f"best epoch {best['epoch']}: micro F1 {best['test']['micro']['f1']:.4f}; "
          f"checkpoint {args.out_dir / 'best.pt'}")
    return summary


def main(argv=None):
    run(parse_args(argv))


if __name__ == "__main__":
    main()
