"""Training curves from the per-epoch log."""


def save_curves(log, path):
    """Loss (train) and entity micro F1 (test) per epoch in one small PNG."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    epochs = [e["epoch"] for e in log]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    a.plot(epochs, [e["train_loss"] for e in log], "o-", label="train")
    if all("test_loss" in e for e in log):
        a.plot(epochs, [e["test_loss"] for e in log], "s-", label="test")
    a.set_xlabel("epoch")
    a.set_ylabel("loss per char")
    a.legend()
    b.plot(epochs, [e["test"]["micro"]["f1"] for e in log], "o-", label="micro")
    for t in sorted(log[-1]["test"]["types"]):
        b.plot(epochs, [e["test"]["types"][t]["f1"] for e in log], ".--", label=t)
    b.set_xlabel("epoch")
    b.set_ylabel("test entity F1")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def save_f1_against_minutes(logs, path):
    """Test micro F1 after each epoch against the training minutes spent, one line per
    run ({name: log entries}): the equal-time comparison of backends."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for name, log in logs.items():
        ax.plot([e["trained_min"] for e in log], [e["test"]["micro"]["f1"] for e in log],
                "o-", label=name)
    ax.set_xlabel("training minutes (evaluation excluded)")
    ax.set_ylabel("test micro F1")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
