"""Markdown tables from one or more training logs (for RESULTS.md), and with --plot
the test F1 of each run against its training minutes.

    python -m examples.ner.report examples/ner/runs/final_gru_cuda/log.json \
        examples/ner/runs/final_nn/log.json [--plot f1_minutes.png]
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


def equal_time_table(logs, marks):
    """At each mark (training minutes), each run's best test micro F1 of the epochs that
    had ended by then."""
    rows = ["| minutes | " + " | ".join(name for name, _ in logs) + " |",
            "|---:|" + "---:|" * len(logs)]
    for mark in marks:
        cells = []
        for _, log in logs:
            done = [e["test"]["micro"]["f1"] for e in log["epochs"]
                    if e.get("trained_min", float("inf")) <= mark]
            cells.append(f"{max(done):.4f}" if done else "-")
        rows.append(f"| {mark:g} | " + " | ".join(cells) + " |")
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
    if all("trained_min" in e for _, log in logs for e in log["epochs"]):
        longest = max(e["trained_min"] for _, log in logs for e in log["epochs"])
        print()
        print("\n".join(equal_time_table(logs, [m for m in (5, 10, 15, 20, 30, 45)
                                                if m <= longest + 1])))


if __name__ == "__main__":
    argv = sys.argv[1:]
    plot = None
    if "--plot" in argv:
        at = argv.index("--plot")
        plot, argv = argv[at + 1], argv[:at] + argv[at + 2:]
    main(argv)
    if plot:
        from examples.ner.plots import save_f1_against_minutes
        save_f1_against_minutes({load(p)["args"]["backend"]: load(p)["epochs"] for p in argv},
                                plot)
