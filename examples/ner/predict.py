"""Tag text with a trained checkpoint and print the entities.

    python -m examples.ner.predict --checkpoint examples/ner/runs/gru_cuda/best.pt
    python -m examples.ner.predict --checkpoint best.pt "国务院总理朱镕基在人民大会堂会见记者"
    echo "中共中央致中国致公党十一大的贺词" | python -m examples.ner.predict --checkpoint best.pt

With no texts it reads one text per line from a pipe; with none there either (a
terminal, an empty pipe, /dev/null) it tags three example sentences.
"""
import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from examples.ner.data import Encoder, pad_ids  # noqa: E402
from examples.ner.model import BACKENDS, Tagger  # noqa: E402
from examples.ner.spans import entities  # noqa: E402

# The three sentences of the original tutorial.
DEFAULT_TEXTS = [
    "2024年春节期间，云南省昆明市的游客数量大幅增长。",
    "国务院总理朱镕基在人民大会堂会见记者时表示，中国经济将保持稳定增长。",
    "中共中央致中国致公党十一大的贺词",
]


CHECKPOINT_KEYS = ("backend", "config", "model", "vocab", "tags")


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message names the file and why."""


def read_checkpoint(path):
    """The dict train.py saved, or CheckpointError saying in one line what is wrong."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file (train one with examples.ner.train, "
                              "which writes best.pt into its --out-dir)")
    if path.is_dir():
        raise CheckpointError(f"{path}: a folder, not a checkpoint file (e.g. {path / 'best.pt'})")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (any unreadable file gets the same answer)
        raise CheckpointError(f"{path}: not a checkpoint file torch can read "
                              f"({type(exc).__name__})") from exc
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not a checkpoint of examples.ner.train (no "
                              f"{', '.join(missing)})")
    return ckpt


def load_tagger(path, backend=None, device="cpu"):
    """Model (eval mode) and Encoder from a checkpoint written by train.py.

    The GRU weights have nn.GRU's names in both backends, so a gru_cuda
    checkpoint loads into nn.GRU when the extension is not built.
    """
    ckpt = read_checkpoint(path)
    backend = backend or ckpt["backend"]
    if backend == "gru_cuda":
        try:
            import gru_cuda  # noqa: F401, PLC0415
        except ImportError:
            print("gru_cuda is not importable; using torch.nn.GRU", file=sys.stderr)
            backend = "nn"
    try:
        model = Tagger(**ckpt["config"], backend=backend)
        model.load_state_dict(ckpt["model"])
    except ImportError as exc:  # a CRF checkpoint without pytorch-crf
        raise CheckpointError(f"{path}: needs a package that is missing ({exc})") from exc
    except (TypeError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path}: does not fit the tagger ({first[:120]})") from exc
    model.to(device).eval()
    return model, Encoder(ckpt["vocab"], ckpt["tags"], ckpt.get("bigrams"))


def tag_texts(model, encoder, texts, device="cpu"):
    """For each text a list of {"type", "start", "end", "text"} (end exclusive)."""
    results = [[] for _ in texts]
    live = [i for i, t in enumerate(texts) if len(t) > 0]  # empty text -> no entities
    if not live:
        return results
    x, lengths = pad_ids([encoder.chars(list(texts[i])) for i in live])
    mask = torch.arange(x.size(1))[None, :] < lengths[:, None]
    x, mask, lengths = x.to(device), mask.to(device), lengths.to(device)
    with torch.no_grad():
        best = model.decode(model.emissions(x, lengths), mask)
    for i, tag_ids in zip(live, best):
        tags = [encoder.tags[t] for t in tag_ids]
        results[i] = [{"type": t, "start": s, "end": e, "text": texts[i][s:e]}
                      for t, s, e in entities(tags)]
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("texts", nargs="*", help="text to tag; '-' or none with piped "
                   "input reads one text per stdin line; none there either (a terminal, "
                   "an empty pipe) tags three example sentences")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="default: the backend the checkpoint was trained with")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="one JSON object per text")
    args = p.parse_args(argv)

    # The checkpoint first: a wrong path fails at once, before any wait on stdin.
    try:
        model, encoder = load_tagger(args.checkpoint, args.backend, args.device)
    except CheckpointError as exc:
        p.exit(2, f"predict: {exc}\n")
    texts = args.texts
    if texts == ["-"] or (not texts and not sys.stdin.isatty()):
        texts = [line.rstrip("\r\n") for line in sys.stdin]
        if not texts:
            print("predict: no text on standard input; tagging the example sentences",
                  file=sys.stderr)
    if not texts:
        texts = DEFAULT_TEXTS
    for text, ents in zip(texts, tag_texts(model, encoder, texts, args.device)):
        if args.json:
            print(json.dumps({"text": text, "entities": ents}, ensure_ascii=False))
            continue
        print(text)
        for e in ents:
            print(f"  {e['type']:<4} [{e['start']}, {e['end']}) {e['text']}")
        if not ents:
            print("  (no entities)")


if __name__ == "__main__":
    main()
