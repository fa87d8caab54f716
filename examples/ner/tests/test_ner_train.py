"""A 2-epoch training run on a tiny synthetic corpus learns it, per backend."""
import json

import pytest
import torch

from examples.ner import synthetic, train
from examples.ner.model import Tagger


def backend_available(name):
    if name == "nn":
        return True
    try:
        import gru_cuda  # noqa: F401, PLC0415
        return hasattr(gru_cuda, "GRU")
    except ImportError:
        return False


BACKENDS = [pytest.param(b, marks=pytest.mark.skipif(not backend_available(b),
                                                     reason=f"{b} not importable"))
            for b in ("nn", "gru_cuda")]
TINY = ["--epochs", "2", "--batch-size", "16", "--lr", "0.01", "--embed-size", "32",
        "--hidden-size", "32", "--layers", "1", "--dropout", "0.1", "--threads", "1",
        "--device", "cpu", "--no-progress", "--seed", "0"]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    return synthetic.write_corpus(tmp_path_factory.mktemp("tiny_msra"), 600, 100)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
def test_tiny_run_learns(tiny_corpus, tmp_path, backend, crf):
    args = train.parse_args(["--data-dir", str(tiny_corpus), "--out-dir", str(tmp_path),
                             "--backend", backend] + TINY + (["--crf"] if crf else []))
    summary = train.run(args)
    assert len(summary["epochs"]) == 2
    best = max(e["test"]["micro"]["f1"] for e in summary["epochs"])
    assert best > 0.9
    assert summary["epochs"][1]["train_loss"] < summary["epochs"][0]["train_loss"]
    for name in ("best.pt", "log.json", "curves.png", "lengths.png"):
        assert (tmp_path / name).stat().st_size > 0
    log = json.loads((tmp_path / "log.json").read_text())
    assert [e["epoch"] for e in log["epochs"]] == [1, 2]
    assert all(e["epoch_time_s"] > 0 for e in log["epochs"])
    assert set(log["epochs"][0]["test"]["types"]) == {"PER", "LOC", "ORG"}
    ckpt = torch.load(tmp_path / "best.pt", weights_only=True)
    assert ckpt["tags"][0] == "O" and ckpt["vocab"][:2] == ["<pad>", "<unk>"]
    assert ckpt["config"]["crf"] is crf and ckpt["backend"] == backend


def test_padding_does_not_leak_into_backward_direction():
    # A sentence's emissions must not change when it is batched with a longer one.
    torch.manual_seed(0)
    model = Tagger(20, 5, embed_size=8, hidden_size=8, layers=2, dropout=0.0,
                   backend="nn").eval()
    short = torch.tensor([[3, 4, 5]])
    alone = model.emissions(short, torch.tensor([3]))
    batch = torch.tensor([[3, 4, 5, 0, 0, 0], [6, 7, 8, 9, 10, 11]])
    padded = model.emissions(batch, torch.tensor([3, 6]))
    torch.testing.assert_close(padded[0, :3], alone[0])


def test_init_does_not_depend_on_backend_rng_use(monkeypatch):
    # Building a GRU that consumes extra randomness must not change the weights.
    torch.manual_seed(5)
    a = Tagger(30, 5, embed_size=8, hidden_size=8, backend="nn", crf=True).state_dict()

    class NoisyGRU(torch.nn.GRU):
        def __init__(self, *args, **kw):
            torch.rand(1000)
            super().__init__(*args, **kw)

    monkeypatch.setattr("examples.ner.model.gru_class", lambda backend: NoisyGRU)
    torch.manual_seed(5)
    b = Tagger(30, 5, embed_size=8, hidden_size=8, backend="nn", crf=True).state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_long_training_sentences_are_chunked_not_dropped(tmp_path):
    (tmp_path / "msra_train_bio.txt").write_text(
        "".join("字\tO\n" for _ in range(250)) + "\n张\tB-PER\n三\tI-PER\n\n",
        encoding="utf-8")
    (tmp_path / "msra_test_bio.txt").write_text("张\tB-PER\n三\tI-PER\n", encoding="utf-8")
    args = train.parse_args(["--data-dir", str(tmp_path), "--out-dir", str(tmp_path / "o"),
                             "--backend", "nn", "--max-len", "100", "--epochs", "1",
                             "--embed-size", "4", "--hidden-size", "4", "--no-progress",
                             "--threads", "1"])
    summary = train.run(args)
    assert summary["corpus"]["train"]["characters"] == 252
    assert summary["epochs"][0]["chars_per_s"] > 0


def test_bigrams_dev_split_and_time_budget(tiny_corpus, tmp_path):
    """The stronger recipe's pieces: char bigram embeddings, a dev split carved out of
    train (the test set waits), a wall-clock budget, a checkpoint every epoch."""
    from examples.ner import predict
    args = train.parse_args(["--data-dir", str(tiny_corpus), "--out-dir", str(tmp_path),
                             "--backend", "nn", "--bigram-min-count", "2",
                             "--bigram-embed-size", "8", "--dev-size", "50",
                             "--time-budget", "0.001", "--crf", "--epochs", "4"] + TINY[2:])
    summary = train.run(args)
    assert len(summary["epochs"]) == 1  # the first epoch took longer than the budget
    entry = summary["epochs"][0]
    assert entry["scored_on"] == "dev" and entry["trained_min"] > 0
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["bigrams"][:2] == ["<pad>", "<unk>"] and len(ckpt["bigrams"]) > 2
    assert ckpt["config"]["bigram_vocab_size"] == len(ckpt["bigrams"])
    model, encoder = predict.load_tagger(tmp_path / "best.pt")
    [ids] = [encoder.chars(list("张伟在北京"))]
    assert len(ids) == 5 and all(len(pair) == 2 for pair in ids)
    assert len(predict.tag_texts(model, encoder, ["张伟在北京", ""])) == 2


def test_bigrams_of_a_sentence():
    from examples.ner import data
    assert data.bigrams(list("北京市")) == ["北京", "京市", "市</s>"]
    vocab = data.build_bigram_vocab([(list("北京北京"), ["O"] * 4)], min_freq=2)
    assert vocab == ["<pad>", "<unk>", "北京"]
