"""Entity-level scores (seqeval, conlleval-style) plus token accuracy. Training's
scoring only: tagging reads spans with examples.ner.spans."""
from seqeval.metrics import classification_report


def score(gold, pred):
    """Scores of predicted tag sequences against gold ones.

    Returns {"types": {TYPE: {precision, recall, f1, support}},
             "micro": {...}, "token_accuracy": float}.
    seqeval's default mode counts spans the way conlleval does (an I- after O
    starts an entity), which is what MSRA papers report.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    total = correct = 0
    for g, p in zip(gold, pred):
        if len(g) != len(p):
            raise ValueError("gold and predicted sentence lengths differ")
        total += len(g)
        correct += sum(a == b for a, b in zip(g, p))
    report = classification_report([list(g) for g in gold], [list(p) for p in pred],
                                   output_dict=True, zero_division=0)
    keys = ("precision", "recall", "f1-score", "support")
    rename = {"f1-score": "f1"}
    types = {t: {rename.get(k, k): float(v[k]) for k in keys}
             for t, v in report.items() if not t.endswith(" avg")}
    micro = {rename.get(k, k): float(report["micro avg"][k]) for k in keys}
    return {"types": types, "micro": micro,
            "token_accuracy": correct / total if total else 0.0}


def format_scores(s):
    """A small fixed-width table for logs and RESULTS.md."""
    lines = [f"{'type':<6} {'P':>7} {'R':>7} {'F1':>7} {'support':>8}"]
    rows = sorted(s["types"].items()) + [("micro", s["micro"])]
    for name, v in rows:
        lines.append(f"{name:<6} {v['precision']:7.4f} {v['recall']:7.4f} "
                     f"{v['f1']:7.4f} {int(v['support']):8d}")
    lines.append(f"token accuracy {s['token_accuracy']:.4f}")
    return "\n".join(lines)
