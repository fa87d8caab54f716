"""Predict round trip through a checkpoint saved by a tiny training run."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from examples.ner import predict, synthetic, train


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    corpus = synthetic.write_corpus(root / "data", 600, 50)
    args = train.parse_args([
        "--data-dir", str(corpus), "--out-dir", str(root / "run"), "--backend", "nn",
        "--epochs", "2", "--batch-size", "16", "--lr", "0.01", "--embed-size", "32",
        "--hidden-size", "32", "--layers", "1", "--dropout", "0.1", "--crf",
        "--no-progress", "--seed", "0", "--threads", "1"])
    train.run(args)
    return root / "run" / "best.pt"


def test_round_trip_finds_entities_with_offsets(checkpoint):
    model, enc = predict.load_tagger(checkpoint)
    text = "张伟在北京会见了新华社的代表。"
    [ents] = predict.tag_texts(model, enc, [text])
    assert ents == [
        {"type": "PER", "start": 0, "end": 2, "text": "张伟"},
        {"type": "LOC", "start": 3, "end": 5, "text": "北京"},
        {"type": "ORG", "start": 8, "end": 11, "text": "新华社"},
    ]


def test_unknown_chars_and_empty_input(checkpoint):
    model, enc = predict.load_tagger(checkpoint)
    assert enc.chars(list("龘")) == [[1, 1]]  # char and bigram never seen in training -> UNK
    out = predict.tag_texts(model, enc, ["", "龘龘张伟龘", ""])
    assert out[0] == [] and out[2] == []
    for e in out[1]:  # offsets index the original text
        assert "龘张伟龘"[0:0] == "" and e["text"] == "龘龘张伟龘"[e["start"]:e["end"]]
    assert predict.tag_texts(model, enc, []) == []


def test_cli_text_and_stdin(checkpoint, capsys, monkeypatch):
    predict.main(["--checkpoint", str(checkpoint), "--json", "刘洋去了上海。"])
    line = json.loads(capsys.readouterr().out)
    assert line["text"] == "刘洋去了上海。"
    assert {"type": "LOC", "start": 4, "end": 6, "text": "上海"} in line["entities"]

    import io
    monkeypatch.setattr("sys.stdin", io.StringIO("李娜在西安。\n\n"))
    predict.main(["--checkpoint", str(checkpoint), "-"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "李娜在西安。" and "PER" in out[1] and "[0, 2) 李娜" in out[1]
    assert "(no entities)" in out[-1]  # the empty line


def test_default_sentences(checkpoint, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    predict.main(["--checkpoint", str(checkpoint)])
    out = capsys.readouterr().out
    for text in predict.DEFAULT_TEXTS:
        assert text in out


def _repo_root():
    return Path(__file__).resolve().parents[3]


def _predict(args, stdin_bytes=b""):
    """predict as a user runs it: a separate process, stdin a pipe (not a terminal)."""
    return subprocess.run([sys.executable, "-m", "examples.ner.predict", *args],
                          input=stdin_bytes, capture_output=True, cwd=_repo_root(), timeout=120)


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_empty_stdin_tags_the_example_sentences(checkpoint, extra):
    done = _predict(["--checkpoint", str(checkpoint), *extra])  # as < /dev/null or printf ''
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    for sentence in predict.DEFAULT_TEXTS:
        assert sentence in out
    assert b"no text on standard input" in done.stderr


def test_checkpoint_is_read_before_stdin(tmp_path):
    """A missing checkpoint fails at once, though stdin never ends."""
    missing = tmp_path / "missing.pt"
    process = subprocess.Popen([sys.executable, "-m", "examples.ner.predict", "--checkpoint",
                                str(missing)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=_repo_root())
    try:
        _, err = process.communicate(timeout=60)  # stdin left open: no EOF ever comes
    finally:
        process.kill()
    assert process.returncode == 2
    assert err.decode().strip().splitlines() == [
        f"predict: {missing}: no such file (train one with examples.ner.train, which writes "
        "best.pt into its --out-dir)"]


@pytest.mark.parametrize("kind", ["folder", "not a checkpoint", "other pickle"])
def test_a_wrong_checkpoint_is_one_line_naming_the_file(tmp_path, kind):
    path = tmp_path / "thing.pt"
    if kind == "folder":
        path.mkdir()
    elif kind == "not a checkpoint":
        path.write_bytes(b"i" * 200)
    else:
        torch.save({105: "something else"}, path)
    done = _predict(["--checkpoint", str(path)])
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"predict: {path}: ")


def test_predict_needs_no_seqeval(checkpoint):
    hide_seqeval = ["-c", "import runpy, sys; sys.modules['seqeval'] = None; "
                          "sys.argv[0] = 'predict'; runpy.run_module('examples.ner.predict', "
                          "run_name='__main__')"]
    done = subprocess.run([sys.executable, *hide_seqeval, "--checkpoint", str(checkpoint),
                           "张伟在北京。"], capture_output=True, cwd=_repo_root(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "张伟在北京。" in done.stdout.decode()
