"""Corpus statistics and the sentence-length histogram."""
from collections import Counter

from examples.ner.spans import entities


def corpus_stats(sentences):
    """Sentence, character and per-type entity counts of one split."""
    per_type = Counter(t for _, tags in sentences for t, _, _ in entities(tags))
    return {"sentences": len(sentences),
            "characters": sum(len(c) for c, _ in sentences),
            "max_length": max((len(c) for c, _ in sentences), default=0),
            "entities": dict(sorted(per_type.items()))}


def format_stats(name, st):
    ents = ", ".join(f"{t} {n}" for t, n in st["entities"].items())
    return (f"{name}: {st['sentences']} sentences, {st['characters']} chars "
            f"(longest {st['max_length']}), entities: {ents or 'none'}")


def save_length_histogram(splits, path):
    """One PNG with a length histogram per split (dict name -> sentences)."""
    import matplotlib  # noqa: PLC0415 - plotting is optional for the library parts
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, sentences in splits.items():
        # clip the rare 2000+ char outliers into the last bin so the bulk is visible
        lengths = [min(len(c), 300) for c, _ in sentences]
        ax.hist(lengths, bins=60, range=(0, 300), alpha=0.6, label=name, density=True)
    ax.set_xlabel("sentence length in characters (clipped at 300)")
    ax.set_ylabel("fraction of sentences")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
