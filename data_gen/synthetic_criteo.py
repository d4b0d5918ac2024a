"""A seeded generator of synthetic click logs in the Criteo Kaggle layout (label, I1-I13, C1-C26, tab-separated).

SYNTHETIC DATA: no row comes from a real log. The labels follow a planted, learnable structure, so a
model that learns something scores an AUC well above 0.5:
- per-value effects in C1, C2, C3 and C9 (logistic weights drawn per category, heavy-tailed frequencies);
- an interaction: clicks are likelier when C4 and C5 fall in the same half of their vocabularies;
- a monotone effect of log(1 + I1) and a negative one of I3;
- about a 25 % click rate.
Other fields are noise with realistic shapes: Zipf-like category frequencies, missing values, and
non-negative integers (I2 may be negative, as in the real data).

    python -m data_gen.synthetic_criteo --rows 20000 --output data.tsv
"""
from __future__ import annotations

import argparse
import os
from typing import TextIO

import numpy as np

NUM_INTEGER = 13
NUM_CATEGORICAL = 26
# Vocabulary size per categorical field: a mix of tiny, medium and long-tail fields, as in Criteo.
_VOCAB_SIZES = [50, 400, 3000, 20, 20, 8, 500, 40, 4, 800, 1200, 5000, 600, 20, 900, 4000, 10, 700, 300, 4,
                6000, 12, 15, 2000, 40, 1500]
_MISSING_RATE_CATEGORICAL = [0.0, 0.0, 0.03, 0.03, 0.0, 0.12, 0.0, 0.0, 0.0, 0.0, 0.0, 0.03, 0.0, 0.0, 0.0,
                             0.03, 0.0, 0.0, 0.44, 0.44, 0.03, 0.76, 0.0, 0.03, 0.44, 0.44]
_MISSING_RATE_INTEGER = [0.45, 0.0, 0.21, 0.22, 0.03, 0.22, 0.04, 0.0, 0.04, 0.45, 0.04, 0.77, 0.22]
_BASE_LOGIT = -2.0
_CHUNK = 50_000


class _Vocabularies:
    """Per-field hex tokens, Zipf-like sampling weights and per-value label effects."""

    def __init__(self, rng: np.random.Generator):
        self.tokens = [np.array([f"{v:08x}" for v in rng.choice(2**32, size=n, replace=False)])
                       for n in _VOCAB_SIZES]
        self.probabilities = []
        for n in _VOCAB_SIZES:
            weights = 1.0 / np.arange(1, n + 1) ** 1.1
            self.probabilities.append(weights / weights.sum())
        self.effects = {field: rng.normal(0.0, 0.9, size=_VOCAB_SIZES[field]) for field in (0, 1, 2, 8)}


def _chunk_lines(rng: np.random.Generator, vocab: _Vocabularies, rows: int) -> list[str]:
    categorical = np.stack([rng.choice(n, size=rows, p=p) for n, p in zip(_VOCAB_SIZES, vocab.probabilities)],
                           axis=1)
    integer = np.stack([
        np.floor(rng.lognormal(mean=1.0 + (i % 4), sigma=1.2, size=rows)).astype(np.int64) for i in range(NUM_INTEGER)
    ], axis=1)
    integer[:, 1] -= rng.integers(0, 3, size=rows)  # I2 can be negative in Criteo
    logit = np.full(rows, _BASE_LOGIT)
    for field, effect in vocab.effects.items():
        logit += effect[categorical[:, field]]
    same_half = (categorical[:, 3] < _VOCAB_SIZES[3] // 2) == (categorical[:, 4] < _VOCAB_SIZES[4] // 2)
    logit += np.where(same_half, 0.9, -0.9)
    logit += 0.35 * np.log1p(np.maximum(integer[:, 0], 0)) - 0.2 * np.log1p(np.maximum(integer[:, 2], 0))
    labels = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))

    int_missing = rng.random((rows, NUM_INTEGER)) < np.array(_MISSING_RATE_INTEGER)
    cat_missing = rng.random((rows, NUM_CATEGORICAL)) < np.array(_MISSING_RATE_CATEGORICAL)
    int_text = np.where(int_missing, "", integer.astype(str))
    cat_text = np.stack([vocab.tokens[f][categorical[:, f]] for f in range(NUM_CATEGORICAL)], axis=1)
    cat_text = np.where(cat_missing, "", cat_text)
    return ["\t".join([str(int(label)), *ints, *cats]) for label, ints, cats in zip(labels, int_text, cat_text)]


def write_synthetic_criteo(out: TextIO, rows: int, seed: int = 2024) -> None:
    """Writes `rows` lines to an open text file, streaming in chunks (memory stays flat in `rows`)."""
    rng = np.random.default_rng(seed)
    vocab = _Vocabularies(rng)
    for start in range(0, rows, _CHUNK):
        out.write("\n".join(_chunk_lines(rng, vocab, min(_CHUNK, rows - start))) + "\n")


def generate(path: str, rows: int, seed: int = 2024) -> str:
    """Writes the file if it is not already there (same path, rows and seed give the same bytes)."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        partial = path + ".partial"
        with open(partial, "w") as out:
            write_synthetic_criteo(out, rows, seed)
        os.replace(partial, path)  # never leave a half-written file where the pipeline would read it
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    print(generate(args.output, args.rows, args.seed))


if __name__ == "__main__":
    main()
