"""Synthetic corpora for `qa bench`'s scale runs: 1,000 to 100,000 passages made of seeds/.

The articles are new arrangements of the seeds' own sentences and headings, so the chunker and
the search see real language, and `SentenceMeanEmbedder` embeds them for the price of the few
hundred distinct sentences rather than of every passage.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SECTIONS_PER_FILE = 40


def corpus_pieces(seeds_dir: Path) -> tuple[list[str], list[str]]:
    """(sentences, headings) of the seeds, distinct and sorted: the synthetic corpus's material.

    Only plain statements are kept: no questions, table rows or list items, which the parser
    would turn into other kinds of block.
    """
    from qa.corpus import HEADING, PARAGRAPH
    from qa.index.build import read_corpus
    from qa.text import sentence_spans

    docs, _ = read_corpus(seeds_dir)
    sentences: set[str] = set()
    headings: set[str] = set()
    for d in docs:
        for b in d.blocks:
            if b.kind == HEADING:
                headings.add(d.raw[b.start : b.end])
            elif b.kind == PARAGRAPH:
                for a, e in sentence_spans(d.raw, b.start, b.end):
                    s = d.raw[a:e]
                    if 40 <= len(s) <= 300 and s[-1] in '.!"”' and "|" not in s:
                        sentences.add(s)
    return sorted(sentences), sorted(headings)


def synthetic_corpus(
    sentences: Sequence[str], headings: Sequence[str], passages: int, seed: int = 0
) -> list[tuple[str, str]]:
    """Articles (file name, text) with about `passages` sections of 2-4 seed sentences each.

    Deterministic: the same inputs give the same bytes. Every section has its own heading, so
    the chunker makes one passage of it.
    """
    rng = random.Random(seed)
    files = []
    for f in range((passages + SECTIONS_PER_FILE - 1) // SECTIONS_PER_FILE):
        n = min(SECTIONS_PER_FILE, passages - f * SECTIONS_PER_FILE)
        lines = [f"Synthetic Dispatch {f:05d}: {rng.choice(headings)}", "By Bench Writer"]
        for _ in range(n):
            body: list[str] = []
            for s in rng.sample(sentences, rng.randint(2, 4)):
                if body and len(" ".join([*body, s])) > 900:
                    break
                body.append(s)
            lines += [rng.choice(headings), " ".join(body)]
        files.append((f"syn_{f:05d}.txt", "\n".join(lines) + "\n"))
    return files


def write_corpus(files: Sequence[tuple[str, str]], folder: Path) -> None:
    """Write the articles of `synthetic_corpus` into a new folder."""
    folder.mkdir()
    for name, text in files:
        (folder / name).write_text(text, encoding="utf-8")


class SentenceMeanEmbedder:
    """Embeds a text as the normalised mean of its sentences' real embeddings.

    Each distinct sentence goes through the real encoder once (the cache is shared by every
    corpus size), so a synthetic corpus of 100,000 passages costs the embeddings of its few
    hundred distinct sentences. It carries the real encoder's name: the vectors live in that
    encoder's space and questions are embedded by it for real.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.cache: dict[str, np.ndarray] = {}

    def encode(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Mean of the sentence vectors of each text, L2-normalised."""
        from qa.text import sentence_spans

        parts = [[t[a:b] for a, b in sentence_spans(t)] or [t] for t in texts]
        new = sorted({s for ss in parts for s in ss if s not in self.cache})
        if new:
            self.cache.update(zip(new, self.inner.encode(new), strict=True))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, ss in enumerate(parts):
            v = np.mean([self.cache[s] for s in ss], axis=0)
            out[i] = v / (np.linalg.norm(v) or 1.0)
        if progress:
            progress(len(texts))
        return out
