"""The FAQ question set: the questions the articles pose themselves, answered by their own FAQs.

Each FAQ question of the corpus becomes a question of the set; its reference answer is the FAQ
answer, and its evidence the answer's first sentence (the whole answer when it is one sentence).
A question an article repeats is kept once. Ids come from the document id and the question's
order in that document, and the output is byte-for-byte stable, so `qa faq` regenerates the
shipped `tests/questions/dev/faq.jsonl` exactly.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from qa.corpus import FAQ_ANSWER, FAQ_QUESTION, Document, read_corpus
from qa.text import fold, one_line, sentence_spans


def faq_questions(documents: Iterable[Document]) -> list[dict[str, Any]]:
    """One question-set record per distinct FAQ question, in corpus order."""
    records: list[dict[str, Any]] = []
    by_question: dict[str, dict[str, Any]] = {}
    for doc in documents:
        order = 0
        for block, nxt in itertools.pairwise(doc.blocks):
            if block.kind != FAQ_QUESTION or nxt.kind != FAQ_ANSWER:
                continue
            # The block's section is the question without a "Question:" prefix.
            question = one_line(block.section)
            answer = one_line(doc.text(nxt))
            sentences = sentence_spans(doc.raw, nxt.start, nxt.end)
            evidence = one_line(doc.text(sentences[0])) if sentences else answer
            seen = by_question.get(fold(question))
            if seen is not None:
                # The same question again (an article repeating its FAQ): keep the first, but
                # another article's different answer is evidence too.
                if doc.id not in seen["docs"]:
                    seen["docs"].append(doc.id)
                if fold(evidence) not in {fold(e) for e in seen["evidence"]}:
                    seen["evidence"].append(evidence)
                continue
            order += 1
            record = {
                "id": f"faq_{doc.id}_{order}",
                "question": question,
                "answer": answer,
                "docs": [doc.id],
                "evidence": [evidence],
            }
            by_question[fold(question)] = record
            records.append(record)
    return records


def faq_jsonl(seeds_dir: Path) -> str:
    """The FAQ question set of a corpus folder, as JSON Lines text."""
    docs, _ = read_corpus(seeds_dir)
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in faq_questions(docs))


def example_questions(documents: Iterable[Document], limit: int) -> list[str]:
    """Up to `limit` distinct FAQ questions, taken in turn from each document (in id order), so
    the welcome screen shows questions the corpus answers, from more than one article."""
    per_doc = [
        [q for b in doc.blocks if b.kind == FAQ_QUESTION and (q := one_line(b.section))]
        for doc in sorted(documents, key=lambda d: d.id)
    ]
    seen: set[str] = set()
    out: list[str] = []
    for turn in itertools.zip_longest(*per_doc):
        for q in turn:
            if q is not None and fold(q) not in seen and len(out) < limit:
                seen.add(fold(q))
                out.append(q)
    return out
