"""Entity-level scoring on hand-made cases, F1 worked out by hand."""
import pytest

from examples.ner.metrics import format_scores, score
from examples.ner.spans import entities


def test_entities_spans_end_exclusive():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "O", "I-ORG"]
    assert entities(tags) == [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 6), ("ORG", 7, 8)]


def test_score_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"],
            ["B-ORG", "I-ORG", "I-ORG", "O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC", "O"],       # PER right, LOC too short
            ["B-ORG", "I-ORG", "I-ORG", "O", "O"]]       # ORG right, PER missed
    s = score(gold, pred)
    # gold: PER x2, LOC, ORG = 4; predicted: PER, LOC(wrong), ORG = 3; correct 2
    assert s["micro"]["precision"] == pytest.approx(2 / 3)
    assert s["micro"]["recall"] == pytest.approx(2 / 4)
    assert s["micro"]["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert s["types"]["PER"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert s["types"]["LOC"]["f1"] == 0.0 and s["types"]["ORG"]["f1"] == 1.0
    assert s["token_accuracy"] == pytest.approx(8 / 10)
    assert "micro" in format_scores(s)


def test_perfect_and_type_confusion():
    gold = [["B-PER", "I-PER", "O"]]
    assert score(gold, gold)["micro"]["f1"] == 1.0
    s = score(gold, [["B-LOC", "I-LOC", "O"]])  # right span, wrong type: no credit
    assert s["micro"]["f1"] == 0.0
    assert s["token_accuracy"] == pytest.approx(1 / 3)


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        score([["O", "O"]], [["O"]])


def test_spans_agree_with_seqeval_on_random_sequences():
    """Tagging reads spans without seqeval; scoring counts them with seqeval: the same."""
    import random

    from seqeval.metrics.sequence_labeling import get_entities
    rng = random.Random(5)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]
    for _ in range(500):
        seq = [rng.choice(tags) for _ in range(rng.randint(0, 12))]
        assert entities(seq) == [(t, s, e + 1) for t, s, e in get_entities(seq)], seq
