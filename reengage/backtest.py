"""How well a score separates customers who did not come back from those who did. Pure.

Used by ``reengage score --backtest``: score the history as it stood on a date, then check
against what really happened in the horizon after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Probability that a random positive outranks a random negative (ties count half).

    Mann-Whitney U with average ranks for ties; None when one class is empty.
    """
    positives = sum(labels)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    order = sorted(range(len(scores)), key=scores.__getitem__)
    rank_sum = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        average_rank = (i + j) / 2 + 1
        rank_sum += average_rank * sum(labels[order[k]] for k in range(i, j + 1))
        i = j + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def precision_at(scores: Sequence[float], labels: Sequence[bool], fraction: float) -> float | None:
    """Share of positives among the top ``fraction`` by score (what a rep's list would hit)."""
    k = max(1, round(len(scores) * fraction))
    if not scores:
        return None
    top = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:k]
    return sum(labels[i] for i in top) / k


@dataclass(frozen=True)
class CalibrationRow:
    """One band of predicted probability and what was observed in it."""

    low: float
    high: float
    count: int
    predicted: float
    observed: float


def calibration(
    probabilities: Sequence[float], labels: Sequence[bool], bands: int = 10
) -> list[CalibrationRow]:
    """Predicted against observed rate in equal-width probability bands (empty bands omitted)."""
    rows = []
    for b in range(bands):
        low, high = b / bands, (b + 1) / bands
        members = [
            i
            for i, p in enumerate(probabilities)
            if low <= p < high or (b == bands - 1 and p == 1.0)
        ]
        if members:
            rows.append(
                CalibrationRow(
                    low,
                    high,
                    len(members),
                    sum(probabilities[i] for i in members) / len(members),
                    sum(labels[i] for i in members) / len(members),
                )
            )
    return rows


@dataclass(frozen=True)
class MethodResult:
    """One ranking's quality on the backtest."""

    name: str
    auc: float | None
    precision_top5: float | None
    precision_top10: float | None


def evaluate(name: str, scores: Sequence[float], labels: Sequence[bool]) -> MethodResult:
    """AUC and the precision of the top 5% and 10% for one ranking."""
    return MethodResult(
        name,
        roc_auc(scores, labels),
        precision_at(scores, labels, 0.05),
        precision_at(scores, labels, 0.10),
    )
