"""The reader against the real MSRA files' README table, when they are present."""
import re

import pytest

from examples.ner import data
from examples.ner.stats import corpus_stats

MSRA = data.default_data_dir()
pytestmark = pytest.mark.skipif(MSRA is None, reason="no MSRA corpus: set MSRA_DATA_DIR")


def readme_table():
    """{file: {sentences, characters, LOC, ORG, PER}} from the corpus README."""
    rows = {}
    for line in (MSRA / "README.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*(msra_\w+\.txt)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|"
                     r"\s*(\d+)\s*\|\s*(\d+)\s*\|", line)
        if m:
            keys = ("sentences", "characters", "LOC", "ORG", "PER")
            rows[m.group(1)] = dict(zip(keys, map(int, m.groups()[1:])))
    return rows


@pytest.mark.parametrize("name", [data.TRAIN_FILE, data.TEST_FILE])
def test_counts_match_readme(name):
    expected = readme_table()[name]
    st = corpus_stats(data.read_bio(MSRA / name))
    assert st["sentences"] == expected["sentences"]
    assert st["characters"] == expected["characters"]
    assert st["entities"] == {t: expected[t] for t in ("LOC", "ORG", "PER")}
    assert st["max_length"] == {data.TRAIN_FILE: 746, data.TEST_FILE: 2427}[name]
