"""``store.lapse_models``: the fitted lapse models (the newest is in force) and the daemon's
refits with their verdicts. Detection reads the model in force through
``store.detection.latest_lapse_model``, which is :func:`latest` here.

A refit is written as it begins (verdict :data:`STARTED`) and its verdict over that row when
it ends: a refit whose process died in between stays ``started``, which is how ``doctor``
knows it did not finish, and the next refit is still a period away (a refit that kills its
process must not run again at once). The next refit to begin closes it with a verdict of its
own (:meth:`LapseModelBook.close_unfinished`), so each row tells one refit's story: a verdict
is written over the row begun at the same moment, and a stop forgets only its own."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from reengage.horizon import HorizonChoice, HorizonSource
from reengage.lapse_model import LapseModel
from reengage.store.tables import LAPSE_MODELS, LAPSE_REFITS

STARTED = "started"  # a refit under way, or one whose process died before its verdict


@dataclass(frozen=True)
class HeldOut:
    """How a model ranked on a window it never saw: from ``start``, ROC AUC and the
    precision of its top 10%."""

    start: datetime
    auc: float | None
    precision: float | None


@dataclass(frozen=True)
class ModelInForce:
    """The model detection scores with, and what is known of it."""

    id: int
    model: LapseModel
    horizon: HorizonChoice | None  # None: kept before the horizon's reason was recorded
    created_at: datetime
    auc: float | None  # on the history it was fitted on
    held_out: HeldOut | None  # on a window it never saw (a refit's)


@dataclass(frozen=True)
class Refit:
    """One refit and its verdict: ``kept``, ``rejected`` or ``skipped`` (and why)."""

    at: datetime
    verdict: str
    horizon_days: float
    held_out_from: datetime | None
    candidate_auc: float | None
    in_force_auc: float | None
    candidate_precision: float | None
    in_force_precision: float | None
    reason: str


def _begun_at(at: datetime) -> sa.ColumnElement[bool]:
    # The refit begun at `at` and not finished: the row its verdict is written over.
    return sa.and_(LAPSE_REFITS.c.verdict == STARTED, LAPSE_REFITS.c.at == at)


def _refit(row: Row[tuple[object, ...]]) -> Refit:
    return Refit(
        row.at,
        row.verdict,
        row.horizon_days,
        row.held_out_from,
        row.candidate_auc,
        row.in_force_auc,
        row.candidate_precision,
        row.in_force_precision,
        row.reason,
    )


def latest(conn: Connection) -> ModelInForce | None:
    """The newest fitted model, or None before the first fit."""
    row = conn.execute(
        sa.select(LAPSE_MODELS).order_by(LAPSE_MODELS.c.id.desc()).limit(1)
    ).one_or_none()
    return None if row is None else _in_force(row)


def _in_force(row: Row[tuple[object, ...]]) -> ModelInForce:
    model = LapseModel(row.horizon_days, tuple(row.weights), row.fitted_as_of, row.customers)
    horizon = None
    if row.horizon_source in set(HorizonSource):
        horizon = HorizonChoice(
            row.horizon_days,
            HorizonSource(row.horizon_source),
            row.median_gap_days,
            row.regular_buyers or 0,
        )
    held_out = None
    if row.held_out_from is not None:
        held_out = HeldOut(row.held_out_from, row.held_out_auc, row.held_out_precision)
    return ModelInForce(row.id, model, horizon, row.created_at, row.auc, held_out)


class LapseModelBook:
    """``store.lapse_models``: keep a model, read the one in force, record refits."""

    def __init__(self, tx: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._tx = tx

    def save(
        self,
        model: LapseModel,
        *,
        horizon: HorizonChoice,
        auc: float | None,
        auc_recency: float | None,
        now: datetime,
        held_out: HeldOut | None = None,
    ) -> int:
        """Keep a fitted lapse model; from now on detection scores with it. Returns its id."""
        if model.weights is None or model.fitted_as_of is None:
            raise ValueError("only fitted models are stored")
        with self._tx() as conn:
            return int(
                conn.execute(
                    LAPSE_MODELS.insert()
                    .values(
                        created_at=now,
                        fitted_as_of=model.fitted_as_of,
                        horizon_days=model.horizon_days,
                        weights=list(model.weights),
                        customers=model.customers,
                        auc=auc,
                        auc_recency=auc_recency,
                        horizon_source=horizon.source.value,
                        median_gap_days=horizon.median_gap_days,
                        regular_buyers=horizon.regular_buyers,
                        held_out_from=held_out.start if held_out else None,
                        held_out_auc=held_out.auc if held_out else None,
                        held_out_precision=held_out.precision if held_out else None,
                    )
                    .returning(LAPSE_MODELS.c.id)
                ).scalar_one()
            )

    def in_force(self) -> ModelInForce | None:
        """The model detection scores with and what is known of it; None: the rhythm prior."""
        with self._tx() as conn:
            return latest(conn)

    def begin_refit(self, at: datetime, horizon_days: float) -> None:
        """Note that a refit begins at ``at``: until its verdict is recorded over it, the
        newest refit is :data:`STARTED` (under way, or its process died)."""
        reason = "started; no verdict yet"
        self.record_refit(Refit(at, STARTED, horizon_days, None, None, None, None, None, reason))

    def record_refit(self, refit: Refit, model_id: int | None = None) -> None:
        """Keep a refit's verdict (``model_id``: the model it kept, if it kept one), over
        the row of the refit begun at ``refit.at``, if it was recorded as begun."""
        values = {
            "at": refit.at,
            "verdict": refit.verdict,
            "horizon_days": refit.horizon_days,
            "held_out_from": refit.held_out_from,
            "candidate_auc": refit.candidate_auc,
            "in_force_auc": refit.in_force_auc,
            "candidate_precision": refit.candidate_precision,
            "in_force_precision": refit.in_force_precision,
            "reason": refit.reason,
            "model_id": model_id,
        }
        with self._tx() as conn:
            if refit.verdict != STARTED:
                over = conn.execute(LAPSE_REFITS.update().where(_begun_at(refit.at)).values(values))
                if (over.rowcount or 0) > 0:
                    return
            conn.execute(LAPSE_REFITS.insert().values(**values))

    def close_unfinished(self, verdict: str, reason: str) -> list[Refit]:
        """Give every refit recorded as begun and never finished ``verdict`` and ``reason``
        (called as a refit begins, under the lease: none of them is still at work), each
        keeping the moment it began. Returns them, closed, oldest first."""
        with self._tx() as conn:
            rows = conn.execute(
                LAPSE_REFITS.update()
                .where(LAPSE_REFITS.c.verdict == STARTED)
                .values(verdict=verdict, reason=reason)
                .returning(*LAPSE_REFITS.c)
            ).all()
        return [_refit(row) for row in sorted(rows, key=lambda row: row.id)]

    def forget_unfinished(self, at: datetime) -> None:
        """Forget the refit begun at ``at`` and not finished (the daemon stopped during it,
        which is no failure): the next start refits as if it had never begun. Any other
        refit keeps its own record."""
        with self._tx() as conn:
            conn.execute(LAPSE_REFITS.delete().where(_begun_at(at)))

    def last_refit(self) -> Refit | None:
        """The newest refit's verdict, or None before the first."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(LAPSE_REFITS).order_by(LAPSE_REFITS.c.id.desc()).limit(1)
            ).one_or_none()
        return None if row is None else _refit(row)
