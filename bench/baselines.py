"""The baselines the lapse benches rank beside reengage's lapse score (``bench/lapse_bench.py``):

- BG/NBD (Fader, Hardie & Lee 2005), fitted by maximum likelihood with scipy: P(no purchase
  within the horizon) and the expected number of purchases;
- a logistic RFM model: ridge logistic regression on log recency, log frequency, log order
  value and log age.
"""

from __future__ import annotations

from typing import Any

# --------------------------------------------------------------------------- BG/NBD (scipy)


def bgnbd_ll(params: Any, x: Any, t_x: Any, age: Any) -> Any:
    """Per-customer log-likelihood of BG/NBD (Fader, Hardie & Lee 2005, eq. 6)."""
    import numpy as np
    from scipy.special import gammaln

    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + age)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return a1 + a2 + np.logaddexp(a3, a4)


def fit_bgnbd(x: Any, t_x: Any, age: Any) -> Any:
    """MLE of (r, alpha, a, b), L-BFGS-B on log parameters over weighted distinct triples."""
    import numpy as np
    from scipy.optimize import minimize

    triples, weights = np.unique(np.column_stack([x, t_x, age]), axis=0, return_counts=True)
    x, t_x, age = triples.T

    def nll(log_params: Any) -> float:
        ll = bgnbd_ll(np.exp(log_params), x, t_x, age)
        return float(-(ll * weights).sum() / weights.sum())

    result = minimize(
        nll,
        np.log([0.5, 30.0, 1.0, 2.0]),
        method="L-BFGS-B",
        bounds=[(-8, 8), (-5, 12), (-8, 8), (-8, 8)],
    )
    return np.exp(result.x)


def bgnbd_scores(params: Any, x: Any, t_x: Any, age: Any, horizon: float) -> tuple[Any, Any]:
    """P(no purchase in (T, T+h]) and E[purchases in (T, T+h]] for each customer."""
    import numpy as np
    from scipy.special import hyp2f1

    r, alpha, a, b = params
    h = horizon
    odds_dead = np.where(
        x > 0, a / np.maximum(b + x - 1, 1e-12) * ((alpha + age) / (alpha + t_x)) ** (r + x), 0.0
    )
    p_alive = 1.0 / (1.0 + odds_dead)
    silent_if_alive = ((alpha + age) / (alpha + age + h)) ** (r + x)
    p0 = 1.0 - p_alive * (1.0 - silent_if_alive)
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, h / (alpha + age + h))
    expected = (a + b + x - 1) / (a - 1) * (1.0 - silent_if_alive * hyp) / (1.0 + odds_dead)
    return p0, expected


# --------------------------------------------------------------------------- logistic RFM


def rfm_rows(days: dict[str, list[float]], value: dict[str, list[float]], at: float) -> Any:
    """log recency, log frequency, log average order value, log age per customer with a
    purchase on or before day ``at``; same-day orders are one occasion."""
    import numpy as np

    ids, rows = [], []
    for customer, when in days.items():
        past = [i for i, d in enumerate(when) if d <= at]
        if not past:
            continue
        occasions = len({int(when[i]) for i in past})
        aov = sum(value[customer][i] for i in past) / len(past)
        ids.append(customer)
        rows.append(
            [
                np.log1p(at - when[past[-1]]),
                np.log(occasions),
                np.log1p(max(aov, 0.0)),
                np.log1p(at - when[past[0]]),
            ]
        )
    return ids, np.array(rows)


def fit_logit(rows: Any, labels: Any, ridge: float = 1.0) -> Any:
    """Ridge logistic regression by Newton's method on standardised columns; the scorer."""
    import numpy as np

    mu, sd = rows.mean(0), rows.std(0) + 1e-9

    def design(x: Any) -> Any:
        return np.column_stack([np.ones(len(x)), (x - mu) / sd])

    z, y = design(rows), np.asarray(labels, float)
    w = np.zeros(z.shape[1])
    penalty = np.diag([0.0] + [ridge] * (len(w) - 1))
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-z @ w))
        step = np.linalg.solve(
            (z * (p * (1 - p))[:, None]).T @ z + penalty, z.T @ (p - y) + penalty @ w
        )
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return lambda x: 1.0 / (1.0 + np.exp(-design(x) @ w))
