"""Markdown tables from one or more training logs (for RESULTS.md).

    python -m examples.ner.report examples/ner/runs/final_gru_cuda/log.json \
        examples/ner/runs/final_nn/log.json
"""
import json
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def epoch_table(name, log):
    rows = [f"| {name} | {e['epoch']} | {e['epoch_time_s']:.0f} | {e['chars_per_s']:.0f} | "
            f"{e['train_loss']:.4f} | {e['test_loss']:.4f} | {e['test']['micro']['f1']:.4f} |"
            for e in log["epochs"]]
    return rows


def best_table(name, log):
    best = next(e for e in log["epochs"] if e["epoch"] == log["best_epoch"])
    rows = []
    for t, v in sorted(best["test"]["types"].items()) + [("micro", best["test"]["micro"])]:
        rows.append(f"| {name} | {best['epoch']} | {t} | {v['precision']:.4f} | "
                    f"{v['recall']:.4f} | {v['f1']:.4f} | {int(v['support'])} |")
    rows.append(f"| {name} | {best['epoch']} | token accuracy | | | "
                f"{best['test']['token_accuracy']:.4f} | |")
    return rows


def main(paths):
    logs = [(load(p)["args"]["backend"], load(p)) for p in paths]
    print("| backend | epoch | train s | chars/s | train loss | test loss | micro F1 |")
    print("|---|---|---|---|---|---|---|")
    for name, log in logs:
        print("\n".join(epoch_table(name, log)))
    print()
    print("| backend | best epoch | type | P | R | F1 | support |")
    print("|---|---|---|---|---|---|---|")
    for name, log in logs:
        print("\n".join(best_table(name, log)))


if __name__ == "__main__":
    main(sys.argv[1:])
