"""A tiny, learnable MSRA-like corpus for smoke runs and tests (no download).

    python -m examples.ner.synthetic --out /tmp/tiny_msra
"""
import argparse
import random
from pathlib import Path

from examples.ner.data import TEST_FILE, TRAIN_FILE

LEXICON = {
    "PER": ["张伟", "李娜", "王芳", "刘洋", "陈静", "杨帆", "赵敏", "周杰"],
    "LOC": ["北京", "上海", "云南省", "昆明市", "广州", "西安", "长江", "黄河"],
    "ORG": ["国务院", "新华社", "联合国", "人民日报", "清华大学", "外交部"],
}
TEMPLATES = [
    "{PER}在{LOC}会见了{ORG}的代表。",
    "{ORG}派{PER}前往{LOC}。",
    "昨天{PER}说，{LOC}的天气很好。",
    "{LOC}和{LOC}之间的交通很方便。",
    "今天没有新闻。",
    "{ORG}发表声明，支持{PER}的意见。",
]


def make_sentence(rng):
    """One (chars, tags) sentence filled from a random template."""
    chars, tags = [], []
    template = rng.choice(TEMPLATES)
    i = 0
    while i < len(template):
        if template[i] == "{":
            j = template.index("}", i)
            etype = template[i + 1:j]
            word = rng.choice(LEXICON[etype])
            chars += list(word)
            tags += [f"B-{etype}"] + [f"I-{etype}"] * (len(word) - 1)
            i = j + 1
        else:
            chars.append(template[i])
            tags.append("O")
            i += 1
    return chars, tags


def write_bio(sentences, path):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for chars, tags in sentences:
            f.write("".join(f"{c}\t{t}\n" for c, t in zip(chars, tags)) + "\n")


def write_corpus(out_dir, n_train=600, n_test=100, seed=0):
    """Write train and test BIO files into out_dir; returns out_dir."""
    rng = random.Random(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_bio([make_sentence(rng) for _ in range(n_train)], out_dir / TRAIN_FILE)
    write_bio([make_sentence(rng) for _ in range(n_test)], out_dir / TEST_FILE)
    return out_dir


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--train", type=int, default=600)
    p.add_argument("--test", type=int, default=100)
    a = p.parse_args()
    print(write_corpus(a.out, a.train, a.test))
