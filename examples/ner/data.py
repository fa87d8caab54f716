"""MSRA BIO reader, tag/char vocabularies and length-bucketed batching."""
import os
import random
from pathlib import Path

import torch

PAD, UNK = "<pad>", "<unk>"
TRAIN_FILE, TEST_FILE = "msra_train_bio.txt", "msra_test_bio.txt"
DATA_DIR_VARIABLE = "MSRA_DATA_DIR"
# Where `python -m examples.ner.prepare --out examples/ner/data` puts the corpus.
PREPARED_DATA_DIR = Path(__file__).resolve().parent / "data"
# Where sentences may be cut when a training sentence is longer than --max-len.
_CUT_AFTER = set("。！？；，、!?;,")


class BioFormatError(ValueError):
    """A line that is not `char<TAB>tag`; names the file and the line."""


def default_data_dir():
    """$MSRA_DATA_DIR if set, else examples/ner/data once prepare has filled it, else None."""
    if os.environ.get(DATA_DIR_VARIABLE):
        return Path(os.environ[DATA_DIR_VARIABLE])
    return PREPARED_DATA_DIR if (PREPARED_DATA_DIR / TRAIN_FILE).is_file() else None


def _check_tag(tag):
    if tag == "O":
        return True
    prefix, _, etype = tag.partition("-")
    return prefix in ("B", "I") and etype != "" and "-" not in etype


def repair_bio(tags):
    """An I-X that does not continue an entity of type X starts one (B-X).

    MSRA has such tags (and chunking long sentences creates them); keeping
    them would give I- tags the model can never predict consistently.
    """
    out, prev = [], "O"
    for tag in tags:
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def read_bio(path):
    """Read a BIO file into a list of (chars, tags) sentences.

    Survives the quirks of the real files: CRLF, empty tags (-> O), missing
    trailing blank line, runs of blank lines, very long sentences and
    I- tags that start an entity.  Anything else that is not `char<TAB>tag`
    raises BioFormatError with file name and line number.
    """
    path = Path(path)
    sentences, chars, tags = [], [], []

    def flush():
        if chars:
            sentences.append((list(chars), repair_bio(tags)))
            chars.clear()
            tags.clear()

    # newline="" keeps '\r' so a CRLF file and a LF file parse the same way below.
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\n").rstrip("\r")
            if "\t" not in line and line.strip() == "":
                flush()
                continue
            parts = line.split("\t")
            char = parts[0]
            tag = parts[1].strip() if len(parts) == 2 else None
            if tag == "":
                tag = "O"  # 57 lines inside leftover <ADDREX...> markup have no tag
            if len(parts) != 2 or len(char) != 1 or not _check_tag(tag):
                raise BioFormatError(
                    f"{path}:{lineno}: expected 'char<TAB>tag' with one character "
                    f"and an O/B-X/I-X tag, got {line!r}")
            chars.append(char)
            tags.append(tag)
    flush()
    return sentences


def entity_types(sentences):
    return sorted({t[2:] for _, tags in sentences for t in tags if t != "O"})


def build_tags(types):
    """Full BIO tag list: O first, then B-/I- for every type."""
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def build_vocab(sentences, min_freq=1):
    """Character list with PAD=0 and UNK=1; from the training set only."""
    counts = {}
    for chars, _ in sentences:
        for c in chars:
            counts[c] = counts.get(c, 0) + 1
    kept = sorted((c for c, n in counts.items() if n >= min_freq),
                  key=lambda c: (-counts[c], c))
    return [PAD, UNK] + kept


def split_long(sentence, max_len):
    """Cut a sentence into chunks of at most max_len chars, never dropping any.

    Prefers to cut after punctuation in the second half of a window so that
    entities are rarely split; the tags of each chunk are re-repaired.
    """
    chars, tags = sentence
    if max_len is None or max_len <= 0 or len(chars) <= max_len:
        return [sentence]
    out, start = [], 0
    while start < len(chars):
        end = min(start + max_len, len(chars))
        if end < len(chars):
            for cut in range(end, start + max_len // 2, -1):
                if chars[cut - 1] in _CUT_AFTER:
                    end = cut
                    break
        out.append((chars[start:end], repair_bio(tags[start:end])))
        start = end
    return out


END = "</s>"  # what the last char of a sentence pairs with in its bigram


def bigrams(chars):
    """Each char with the next one (the last with END): a feature per position."""
    return [a + b for a, b in zip(chars, list(chars[1:]) + [END])]


def build_bigram_vocab(sentences, min_freq):
    """Bigram list with PAD=0 and UNK=1, those seen at least min_freq times in training:
    the cutoff keeps the table (and each optimizer step over it) small."""
    counts = {}
    for chars, _ in sentences:
        for g in bigrams(chars):
            counts[g] = counts.get(g, 0) + 1
    kept = sorted((g for g, n in counts.items() if n >= min_freq),
                  key=lambda g: (-counts[g], g))
    return [PAD, UNK] + kept


class Encoder:
    """Maps chars and tags to ids; unknown chars become UNK. With a bigram vocabulary a
    position is a pair (char id, bigram id)."""

    def __init__(self, vocab, tags, bigram_vocab=None):
        self.vocab, self.tags = list(vocab), list(tags)
        self.char_id = {c: i for i, c in enumerate(self.vocab)}
        self.tag_id = {t: i for i, t in enumerate(self.tags)}
        self.unk = self.char_id[UNK]
        self.bigram_vocab = list(bigram_vocab) if bigram_vocab else None
        self.bigram_id = {g: i for i, g in enumerate(self.bigram_vocab or [])}

    def chars(self, chars):
        ids = [self.char_id.get(c, self.unk) for c in chars]
        if self.bigram_vocab is None:
            return ids
        return [[i, self.bigram_id.get(g, 1)] for i, g in zip(ids, bigrams(chars))]

    def encode(self, sentence):
        chars, tags = sentence
        return self.chars(chars), [self.tag_id[t] for t in tags]


def make_batches(encoded, batch_size, shuffle, seed=0, epoch=0):
    """Group sentences of similar length into batches (less padding, faster RNN).

    The order depends only on (seed, epoch), never on the model or backend, so
    two runs with different GRU backends see identical batches.
    """
    order = list(range(len(encoded)))
    rng = random.Random(seed * 1000003 + epoch)
    if shuffle:
        rng.shuffle(order)  # random tie-breaking inside equal lengths
    order.sort(key=lambda i: len(encoded[i][0]))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        rng.shuffle(batches)
    return batches


def pad_ids(ids_list):
    """(B, width) char ids, or (B, width, 2) with bigrams; zeros (PAD) beyond each length."""
    lengths = torch.tensor([len(ids) for ids in ids_list], dtype=torch.long)
    pair = len(ids_list[0]) > 0 and isinstance(ids_list[0][0], list)
    x = torch.zeros(len(ids_list), int(lengths.max()), *([2] if pair else []), dtype=torch.long)
    for row, ids in enumerate(ids_list):
        if ids:
            x[row, :len(ids)] = torch.tensor(ids)
    return x, lengths


def collate(encoded, idx, pad_tag=0):
    """Pad one batch: (char ids, tag ids, mask, lengths), batch first."""
    x, lengths = pad_ids([encoded[i][0] for i in idx])
    width = x.size(1)
    y = torch.full((len(idx), width), pad_tag, dtype=torch.long)
    for row, i in enumerate(idx):
        tids = encoded[i][1]
        y[row, :len(tids)] = torch.tensor(tids)
    mask = torch.arange(width)[None, :] < lengths[:, None]
    return x, y, mask, lengths


def load_corpus(data_dir, limit=None, test_limit=None):
    """Read train and test files from data_dir (optionally only the first N)."""
    data_dir = Path(data_dir)
    train = read_bio(data_dir / TRAIN_FILE)
    test = read_bio(data_dir / TEST_FILE)
    if limit:
        train = train[:limit]
    if test_limit:
        test = test[:test_limit]
    return train, test
