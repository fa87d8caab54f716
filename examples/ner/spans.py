"""Entity spans of a BIO tag sequence, as conlleval reads them: an entity starts at B-X,
or at an I-X that follows O or another type, and runs over the I-X after it. Needs no
training-only package, so that tagging text does not need seqeval."""


def entities(tags):
    """(type, start, end_exclusive) spans of one tag sequence."""
    spans = []
    kind, start = None, 0
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, label = tag.partition("-")
        continues = prefix == "I" and label == kind
        if kind is not None and not continues:
            spans.append((kind, start, i))
            kind = None
        if prefix in ("B", "I") and not continues:
            kind, start = label, i
    return spans
