"""The MSRA BIO reader and its quirks, on small synthetic files."""
import pytest

from examples.ner import data


def write(tmp_path, text, name="c.txt", newline="\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def test_basic_sentences_and_blank_line_runs(tmp_path):
    path = write(tmp_path, "中\tB-ORG\n共\tI-ORG\n好\tO\n\n\n\n李\tB-PER\n四\tI-PER\n\n")
    assert data.read_bio(path) == [
        (["中", "共", "好"], ["B-ORG", "I-ORG", "O"]),
        (["李", "四"], ["B-PER", "I-PER"]),
    ]


def test_crlf_and_missing_final_blank_line(tmp_path):
    lf = write(tmp_path, "北\tB-LOC\n京\tI-LOC\n\n好\tO\n人\tO", "lf.txt")
    crlf = write(tmp_path, "北\tB-LOC\n京\tI-LOC\n\n好\tO\n人\tO", "crlf.txt", "\r\n")
    assert b"\r\n" in crlf.read_bytes()
    expected = [(["北", "京"], ["B-LOC", "I-LOC"]), (["好", "人"], ["O", "O"])]
    assert data.read_bio(lf) == expected
    assert data.read_bio(crlf) == expected


def test_empty_tags_inside_markup_are_o(tmp_path):
    # the real file has `<ADDREX0TYPE=...>` markup one char a line, with `0<TAB>`
    markup = '<ADDREX0TYPE="PHONE">'
    lines = [f"{c}\t" if c == "0" else f"{c}\tO" for c in markup]
    path = write(tmp_path, "电\tO\n" + "\n".join(lines) + "\n\n")
    [(chars, tags)] = data.read_bio(path)
    assert "".join(chars) == "电" + markup
    assert tags == ["O"] * (len(markup) + 1)


def test_long_sentence_survives(tmp_path):
    n = 2500
    path = write(tmp_path, "".join("字\tO\n" for _ in range(n)) + "张\tB-PER\n\n")
    [(chars, tags)] = data.read_bio(path)
    assert len(chars) == n + 1 and tags[-1] == "B-PER"


@pytest.mark.parametrize("tags,expected", [
    (["I-PER", "I-PER"], ["B-PER", "I-PER"]),                  # leading I-
    (["O", "I-LOC", "I-LOC"], ["O", "B-LOC", "I-LOC"]),         # I- after O
    (["B-ORG", "I-LOC", "I-LOC"], ["B-ORG", "B-LOC", "I-LOC"]),  # I- after other type
    (["B-PER", "I-PER", "B-PER"], ["B-PER", "I-PER", "B-PER"]),  # valid: unchanged
])
def test_bio_repair(tmp_path, tags, expected):
    text = "".join(f"字\t{t}\n" for t in tags)
    [(_, got)] = data.read_bio(write(tmp_path, text))
    assert got == expected


@pytest.mark.parametrize("bad", ["没有制表符", "字\tO\textra", "\tO", "两字\tO", "字\tX-PER", "字\tB-"])
def test_malformed_line_names_file_and_line(tmp_path, bad):
    path = write(tmp_path, f"好\tO\n\n人\tO\n{bad}\n在\tO\n", "bad.txt")
    with pytest.raises(data.BioFormatError) as err:
        data.read_bio(path)
    assert f"{path}:4:" in str(err.value)


def test_tags_vocab_and_encoder():
    train = [(list("张三在北京"), ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]),
             (list("北京"), ["B-LOC", "I-LOC"])]
    tags = data.build_tags(data.entity_types(train))
    assert tags == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    vocab = data.build_vocab(train)
    assert vocab[:2] == [data.PAD, data.UNK]
    assert vocab[2:4] == ["京", "北"]  # most frequent first, ties by char
    enc = data.Encoder(vocab, tags)
    ids, tag_ids = enc.encode((list("北X"), ["B-LOC", "O"]))
    assert ids == [vocab.index("北"), 1] and tag_ids == [1, 0]


def test_split_long_keeps_every_char_and_repairs_tags():
    chars = list("一二三四，五六七八九十甲乙")
    tags = ["O"] * 8 + ["B-LOC", "I-LOC", "I-LOC", "O", "O"]
    chunks = data.split_long((chars, tags), 6)
    assert sum((c for c, _ in chunks), []) == chars
    assert all(len(c) <= 6 for c, _ in chunks)
    assert chunks[0][0] == list("一二三四，")  # cut after the comma
    for c, t in chunks:  # every chunk is valid BIO on its own
        assert t == data.repair_bio(t)
    assert data.split_long((chars, tags), 100) == [(chars, tags)]


def test_batches_bucket_by_length_and_depend_only_on_seed():
    enc = [([1] * n, [0] * n) for n in [5, 1, 6, 3, 7, 2, 8, 4]]
    a = data.make_batches(enc, 2, shuffle=True, seed=3, epoch=1)
    assert a == data.make_batches(enc, 2, shuffle=True, seed=3, epoch=1)
    assert sorted(i for b in a for i in b) == list(range(8))
    for b in a:  # neighbours in length share a batch
        lens = sorted(len(enc[i][0]) for i in b)
        assert lens[1] - lens[0] == 1
    x, y, mask, lengths = data.collate(enc, [1, 2])
    assert x.shape == (2, 6) and lengths.tolist() == [1, 6]
    assert mask.sum().item() == 7 and x[0, 1:].eq(0).all()
