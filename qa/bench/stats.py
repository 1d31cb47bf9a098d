"""The arithmetic of `qa bench`'s samples: latency summaries and recall against exact search."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RECALL_K = 10


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds (rounded to 0.01) and the sample count.

    The percentiles interpolate linearly between closest ranks (numpy's default method).
    """
    if not seconds:
        # numpy would raise an IndexError deep inside; say what is wrong instead.
        raise ValueError("summary of no samples")
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    p50, p95 = np.percentile(ms, [50, 95])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "n": len(ms)}


def recall_at_k(found: Sequence[int], exact_scores: np.ndarray, k: int = RECALL_K) -> float:
    """Share of the exact top k that `found` (a search's top k rows) holds.

    A row whose exact score ties the k-th best counts as a true neighbour: with tied scores
    either order is exact, and duplicates are common in a synthetic corpus.
    """
    k = min(k, len(exact_scores))
    if k == 0:
        return 1.0
    kth = -np.partition(-exact_scores, k - 1)[k - 1]
    hits = sum(1 for r in list(found)[:k] if exact_scores[int(r)] >= kth - 1e-5)
    return hits / k
