"""Try candidate features and fitting designs for the lapse score out of time (issue 22).

    python bench/lapse_ideas.py cdnow DIR
    python bench/lapse_ideas.py completejourney DIR

DIR is a folder a bench left with ``--keep``. For each as-of date and horizon of the bench,
the product's own features (``reengage.lapse_model.features`` of the profiles rebuilt as of
as-of − h) are fitted the way ``reengage.scoring.fit_model`` fits them, plus each idea's
extra columns (computed from the raw histories as of the same moment), and scored as of the
as-of date; each row prints its margin over the best baseline of ``bench/lapse_bench.py``
(all / regular customers, AUC / top-10 %). "product" is the lapse score as it is.
``--ridge``, ``--design`` (training cutoffs as-of − h − k·h/2, weighted) and ``--only``
choose what to try.

Results on 2026-12-01: the margin over the best baseline, smallest and mean over the 4 cells
(2 as-of dates × 2 horizons) × all/regular, for AUC and top-10 % precision::

                                          CDNOW                     | Complete Journey
                                  AUC min/mean   p10 min/mean       | AUC min/mean  p10 min/mean
    product as it is (ridge 1)    -0.002 +0.001  -0.011 +0.000      | +0.004 +0.009 -0.017 +0.005
    + orders in h/2, h, 2h, share -0.032 -0.010  -0.102 -0.030      | +0.003 +0.009 -0.024 +0.001
    + orders in the last 2h       -0.002 +0.001  -0.040 -0.005      | +0.005 +0.009 -0.012 +0.006
    + first order amount          -0.002 +0.001  -0.016 +0.000      | +0.002 +0.008 -0.029 +0.006
    + distinct days vs orders     -0.001 +0.002  -0.013 +0.001      | +0.003 +0.009 -0.021 +0.008
    + last order amount           -0.002 +0.001  -0.011 +0.001      | +0.004 +0.009 -0.021 +0.001
    + BG/NBD P(none), E[x]        -0.003 +0.001  -0.011 -0.002      | +0.005 +0.010 +0.000 +0.012
    + BG/NBD P(none)              -0.004 +0.000  -0.010 -0.003      | +0.005 +0.010 -0.013 +0.015
    product, ridge 10             -0.002 +0.001  -0.010 +0.002      | +0.003 +0.008 -0.004 +0.007
    + BG/NBD P(none), ridge 10    -0.003 +0.001  -0.010 -0.000      | +0.006 +0.010 +0.000 +0.020
    product, 3 cutoffs h/2 apart
      weighted 1/.5/.25, ridge 10 -0.001 +0.002  -0.013 +0.000      | +0.004 +0.009 +0.000 +0.013
    + BG/NBD P(none), same        -0.002 +0.001  -0.014 +0.000      | +0.006 +0.011 +0.000 +0.020

(BG/NBD fitted with scipy as of each cutoff, on distinct purchase days.) Nothing moves
CDNOW by more than ±0.003 AUC; counts in windows relative to the horizon hurt it (a single
cohort: at as-of − h its customers are all new). BG/NBD's P(none) as a feature and a
stronger ridge lift The Complete Journey's top-10 % precision by about +0.015 on average,
within its noise (a paired standard error of about 0.02, ``bench/lapse_ceiling.py``), and
its AUC by +0.001. None reaches issue 22's aim, and none was taken into the product.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from baselines import bgnbd_scores, fit_bgnbd
from lapse_bench import BASELINES, rankings_at
from lapse_ceiling import BENCHES, auc, open_store, p10, read_bench

Columns = Callable[[list[float], list[float], float, float], list[float]]


def windows(days: list[float], amounts: list[float], at: float, h: float) -> list[float]:
    when = [d for d in days if d <= at]
    counts = [sum(1 for d in when if d > at - w) for w in (h / 2, h, 2 * h)]
    return [*(math.log1p(c) for c in counts), counts[2] / len(when)]


def window_2h(days: list[float], amounts: list[float], at: float, h: float) -> list[float]:
    when = [d for d in days if d <= at]
    c = sum(1 for d in when if d > at - 2 * h)
    return [math.log1p(c)]


def first_order(days: list[float], amounts: list[float], at: float, h: float) -> list[float]:
    when = [i for i, d in enumerate(days) if d <= at]
    first = amounts[when[0]]
    mean = sum(amounts[i] for i in when) / len(when)
    return [math.log1p(max(first, 0.0)), math.log((first + 1.0) / (mean + 1.0))]


def distinct_days(days: list[float], amounts: list[float], at: float, h: float) -> list[float]:
    when = [d for d in days if d <= at]
    distinct = len({int(d) for d in when})
    return [math.log(distinct / len(when)), math.log(distinct)]


def last_amount(days: list[float], amounts: list[float], at: float, h: float) -> list[float]:
    when = [i for i, d in enumerate(days) if d <= at]
    last = amounts[when[-1]]
    mean = sum(amounts[i] for i in when) / len(when)
    return [math.log((last + 1.0) / (mean + 1.0))]


IDEAS: dict[str, Columns | None] = {
    "product": None,
    "windows h/2,h,2h + share": windows,
    "window 2h only": window_2h,
    "first order amount": first_order,
    "distinct days vs orders": distinct_days,
    "last order amount": last_amount,
}


def bgnbd_columns(ids: list[str], days: dict[str, list[float]], at: float, h: float) -> Any:
    """logit P(none in h) and log E[purchases] of BG/NBD fitted as of ``at``."""
    x, t_x, age = [], [], []
    for c in ids:
        past = sorted({int(d) for d in days[c] if d <= at})
        x.append(len(past) - 1)
        t_x.append(past[-1] - past[0])
        age.append(int(at) - past[0])
    xs, txs, ages = (np.array(v, float) for v in (x, t_x, age))
    p0, expected = bgnbd_scores(fit_bgnbd(xs, txs, ages), xs, txs, ages, h)
    p0 = np.clip(p0, 1e-6, 1 - 1e-6)
    return np.column_stack([np.log(p0 / (1 - p0)), np.log(np.maximum(expected, 1e-6))])


def product_rows(store: Any, moment: datetime, h: float) -> tuple[list[str], Any, Any]:
    from reengage.detect import fit_population, inputs_of
    from reengage.lapse_model import features

    profiles = list(store.detection.profiles_as_of(moment))
    population = fit_population((p.segment, p.typical_gap_days) for p in profiles)
    ids, rows, orders = [], [], []
    for p in profiles:
        inputs = inputs_of(p, population, moment)
        if inputs is None:
            continue
        ids.append(p.external_id)
        rows.append(features(inputs, h))
        orders.append(p.customer_id)
    return ids, np.array(rows), np.array(orders)


def margins(found: Any, scores: Any) -> list[float]:
    y = np.asarray(found.gone, bool)
    out = []
    for part in (np.ones(len(y), bool), found.regular):
        for measure in (auc, p10):
            best = max(
                measure(np.asarray(s, float)[part], y[part])
                for n, s in found.scores.items()
                if n.startswith(BASELINES)
            )
            out.append(measure(scores[part], y[part]) - best)
    return out


def fit_weighted(x: Any, y: Any, weight: Any, ridge: float) -> Any:
    """:func:`reengage.lapse_features.fit_weights` with a weight per row."""
    mean, scale = x[:, 1:].mean(axis=0), x[:, 1:].std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = np.column_stack([np.ones(len(x)), (x[:, 1:] - mean) / scale])
    penalty = np.diag([0.0] + [ridge] * (z.shape[1] - 1))
    w = np.zeros(z.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        hessian = (z * (weight * p * (1.0 - p))[:, None]).T @ z + penalty
        step = np.linalg.lstsq(hessian, z.T @ (weight * (p - y)) + penalty @ w, rcond=None)[0]
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    raw = w[1:] / scale
    return np.array([w[0] - raw @ mean, *raw])


DESIGNS = {
    "one cutoff": ((0.0, 1.0),),
    "3 cutoffs h/2 apart, 1/.5/.25": ((0.0, 1.0), (0.5, 0.5), (1.0, 0.25)),
    "3 cutoffs h/4 apart, equal": ((0.0, 1.0), (0.25, 1.0), (0.5, 1.0)),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bench", choices=sorted(BENCHES))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--ridge", nargs="+", type=float, default=[1.0])
    parser.add_argument("--only", nargs="+", default=None, help="ideas whose name has these")
    parser.add_argument("--design", nargs="+", default=["one cutoff"], choices=sorted(DESIGNS))
    args = parser.parse_args(argv)
    horizons, dates = BENCHES[args.bench]
    purchases, now = read_bench(args.bench, args.folder)
    store = open_store(args.folder, purchases, now, args.bench)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    days: dict[str, list[float]] = {}
    value: dict[str, list[float]] = {}
    for p in sorted(purchases, key=lambda p: p.at):
        days.setdefault(p.customer, []).append((p.at - epoch).total_seconds() / 86400.0)
        value.setdefault(p.customer, []).append(p.amount)

    def raw(idea: Columns) -> Any:
        return lambda ids, at, h: np.array([idea(days[c], value[c], at, h) for c in ids])

    ideas: dict[str, Any] = {n: (raw(f) if f else None) for n, f in IDEAS.items()}
    ideas["BG/NBD as features"] = lambda ids, at, h: bgnbd_columns(ids, days, at, h)
    ideas["BG/NBD P(none) only"] = lambda ids, at, h: bgnbd_columns(ids, days, at, h)[:, :1]
    ideas["BG/NBD E[x] only"] = lambda ids, at, h: bgnbd_columns(ids, days, at, h)[:, 1:]
    ideas["BG/NBD + distinct days"] = lambda ids, at, h: np.column_stack(
        [bgnbd_columns(ids, days, at, h), raw(distinct_days)(ids, at, h)]
    )
    if args.only:
        ideas = {n: f for n, f in ideas.items() if n == "product" or any(o in n for o in args.only)}
    table: dict[str, list[list[float]]] = {}
    for d in map(date.fromisoformat, dates):
        as_of = datetime.combine(d, time(0), UTC)
        at = (as_of - epoch).total_seconds() / 86400.0
        for h in horizons:
            found = rankings_at(store, days, value, epoch, as_of, h)
            test_ids, test_x, _ = product_rows(store, as_of, h)
            assert test_ids == found.ids
            snapshots: dict[float, Any] = {}
            for design in args.design:
                for back, _ in DESIGNS[design]:
                    if back in snapshots:
                        continue
                    start = as_of - timedelta(days=h * (1 + back))
                    ids, x, keys = product_rows(store, start, h)
                    returned = store.detection.buyers_between(start, start + timedelta(days=h))
                    snapshots[back] = (ids, x, np.array([k not in returned for k in keys]))
            for design in args.design:
                for ridge in args.ridge:
                    for name, idea in ideas.items():
                        tx, ty, tw = [], [], []
                        for back, weight in DESIGNS[design]:
                            ids, x, labels = snapshots[back]
                            if len(ids) < 200:  # before the history starts
                                continue
                            cut = at - h * (1 + back)
                            tx.append(
                                x if idea is None else np.column_stack([x, idea(ids, cut, h)])
                            )
                            ty.append(labels)
                            tw.append(np.full(len(labels), weight))
                        sx = (
                            test_x
                            if idea is None
                            else np.column_stack([test_x, idea(test_ids, at, h)])
                        )
                        w = fit_weighted(
                            np.vstack(tx),
                            np.concatenate(ty).astype(float),
                            np.concatenate(tw),
                            ridge,
                        )
                        key = f"{name} ({design}, ridge {ridge:g})"
                        table.setdefault(key, []).append(margins(found, sx @ w))
            print(f"{args.bench} {d} h={h} done", flush=True)
    store.close()
    cells = [f"{d[:7]} h{h}" for d in dates for h in horizons]
    width = max(len(k) for k in table)
    print(f"{'idea':<{width}} " + " | ".join(f"{c:^27}" for c in cells))
    print(f"{'':<{width}} " + " | ".join(f"{'aAUC aP10 rAUC rP10':^27}" for _ in cells))
    for key, rows in table.items():
        print(f"{key:<{width}} " + " | ".join(" ".join(f"{v:+.3f}" for v in r) for r in rows))


if __name__ == "__main__":
    main()
