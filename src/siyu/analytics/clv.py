"""Customer lifetime value: the BG/NBD model of how often people buy and when they stop (Fader,
Hardie & Lee 2005, "Counting your customers the easy way"), and the Gamma-Gamma model of how much
they spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV"), both fitted by maximum
likelihood with scipy.

Per person the models need, in days: ``x`` repeat purchases (purchase days after the first),
``t_x`` the age at the last purchase (days from the first purchase to the last), ``T`` the age
now (days from the first purchase to the moment of the run), and for spend ``m`` the average
value of the repeat purchases. :func:`clv_inputs` derives them as an Ibis expression; fitting and
scoring are numpy over those columns. Fitting on a large base uses a deterministic sample (the
likelihood of a few hundred thousand people pins the four parameters down); everyone is scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

from siyu.core.clock import ensure_utc
from siyu.core.errors import ValidationFailedError

DAY_SECONDS = 86_400
FIT_SAMPLE = 300_000


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float


def clv_inputs(purchases: ir.Table, as_of: datetime) -> ir.Table:
    """profile_id, x, t_x, T (days), m (average repeat purchase, fen; 0 with no repeat purchase).
    Purchases on one day count once, their amounts summed, as the models count purchase occasions."""
    now_s = int(ensure_utc(as_of).timestamp())
    seen = purchases.filter(purchases.at.epoch_seconds() <= now_s)
    day = (seen.at.epoch_seconds() // DAY_SECONDS).cast("int64")
    days = seen.mutate(day=day).group_by(["profile_id", "day"]).aggregate(amount=seen.amount_fen.sum())
    first = days.day.min()
    people = days.group_by("profile_id").aggregate(
        occasions=days.count(),
        first_day=first,
        last_day=days.day.max(),
        total=days.amount.sum(),
        first_amount=days.amount.argmin(days.day),
    )
    x = (people.occasions - 1).cast("int64")
    repeat_spend = (people.total - people.first_amount).cast("float64")
    return people.select(
        "profile_id",
        x=x,
        t_x=(people.last_day - people.first_day).cast("float64"),
        T=((now_s // DAY_SECONDS) - people.first_day).cast("float64"),
        m=(x > 0).ifelse(repeat_spend / x.cast("float64"), 0.0),
    )


def _bgnbd_ll(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + big_t)
    repeat = x > 0
    a4 = np.where(repeat, np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return np.asarray(a1 + a2 + np.logaddexp(a3, a4))


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, sample: int = FIT_SAMPLE) -> BgNbd:
    """Maximum-likelihood r, alpha, a, b (in the time unit of t_x and T)."""
    x, t_x, big_t = _sampled(sample, x, t_x, big_t)
    if len(x) < 10 or not (x > 0).any():
        raise ValidationFailedError("BG/NBD needs at least 10 customers, some with repeat purchases")
    scale = max(float(big_t.max()), 1.0) / 10.0  # fit on a time scale near 10, then convert alpha back

    def loss(log_params: np.ndarray) -> float:
        r, alpha, a, b = np.exp(log_params)
        return -float(np.mean(_bgnbd_ll(np.array([r, alpha, a, b]), x, t_x / scale, big_t / scale)))

    best = minimize(loss, np.zeros(4), method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 5000})
    best = minimize(loss, best.x, method="L-BFGS-B")
    r, alpha, a, b = np.exp(best.x)
    return BgNbd(float(r), float(alpha * scale), float(a), float(b))


def p_alive(m: BgNbd, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    """The probability each person has not stopped buying."""
    repeat = x > 0
    ratio = np.where(repeat, m.a / np.where(repeat, m.b + x - 1, 1.0), 0.0)
    return np.asarray(1.0 / (1.0 + ratio * np.exp((m.r + x) * (np.log(m.alpha + big_t) - np.log(m.alpha + t_x)))))


def expected_purchases(m: BgNbd, t: float, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    """Expected purchases in the next ``t`` (same unit), given each person's history."""
    z = t / (m.alpha + big_t + t)
    head = (m.a + m.b + x - 1) / (m.a - 1)
    tail = 1.0 - np.exp((m.r + x) * (np.log(m.alpha + big_t) - np.log(m.alpha + big_t + t))) * hyp2f1(
        m.r + x, m.b + x, m.a + m.b + x - 1, z
    )
    repeat = x > 0
    ratio = np.where(repeat, m.a / np.where(repeat, m.b + x - 1, 1.0), 0.0)
    denominator = 1.0 + ratio * np.exp((m.r + x) * (np.log(m.alpha + big_t) - np.log(m.alpha + t_x)))
    return np.asarray(head * tail / denominator)


def _gg_ll(params: np.ndarray, x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    p, q, v = params
    return np.asarray(
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(mean)
        + p * x * np.log(x)
        - (p * x + q) * np.log(x * mean + v)
    )


def fit_gamma_gamma(x: np.ndarray, mean: np.ndarray, sample: int = FIT_SAMPLE) -> GammaGamma:
    """Maximum-likelihood p, q, v over the people with repeat purchases (``mean`` > 0)."""
    keep = (x > 0) & (mean > 0)
    x, mean = _sampled(sample, x[keep].astype(np.float64), mean[keep].astype(np.float64))
    if len(x) < 10:
        raise ValidationFailedError("Gamma-Gamma needs at least 10 customers with repeat purchases")
    scale = float(np.median(mean))  # fit on amounts near 1, then convert v back

    def loss(log_params: np.ndarray) -> float:
        return -float(np.mean(_gg_ll(np.exp(log_params), x, mean / scale)))

    best = minimize(loss, np.zeros(3), method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 5000})
    best = minimize(loss, best.x, method="L-BFGS-B")
    p, q, v = np.exp(best.x)
    return GammaGamma(float(p), float(q), float(v * scale))


def expected_spend(g: GammaGamma, x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Expected value of a person's future purchases (the population's mean for those with none)."""
    population = g.p * g.v / (g.q - 1) if g.q > 1 else float("nan")
    own = (g.p * (g.v + x * mean)) / np.maximum(g.p * x + g.q - 1, 1e-9)
    return np.where(x > 0, own, population)


def _sampled(n: int, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """The columns as float arrays, or every k-th row of them when longer than ``n`` (the same
    rows on every run, so a refit on unchanged data gives the same parameters)."""
    size = len(columns[0])
    step = max(1, -(-size // n))
    return tuple(np.asarray(c, dtype=np.float64)[::step] for c in columns)


HORIZON_DAYS = 90


@dataclass(frozen=True)
class Scored:
    """Each buyer's CLV (profile_id, p_alive, expected_purchases, expected_value_fen over the
    horizon) and the fitted models."""

    table: pa.Table
    purchases: BgNbd
    spend: GammaGamma


def score_clv(inputs: pa.Table, horizon_days: int = HORIZON_DAYS) -> Scored:
    """Fit both models on ``inputs`` (see :func:`clv_inputs`) and score everyone. Values are rounded
    (probabilities to 4 places, purchases to 3, value to whole fen), so a rerun on unchanged data
    rewrites nothing."""
    x, t_x, big_t, m = (
        inputs.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in ("x", "t_x", "T", "m")
    )
    purchase_model = fit_bgnbd(x, t_x, big_t)
    spend_model = fit_gamma_gamma(x, m)
    alive = p_alive(purchase_model, x, t_x, big_t)
    expected = expected_purchases(purchase_model, float(horizon_days), x, t_x, big_t)
    value = expected * expected_spend(spend_model, x, m)
    table = pa.table(
        {
            "profile_id": inputs.column("profile_id"),
            "p_alive": pa.array(np.round(alive, 4)),
            "expected_purchases": pa.array(np.round(expected, 3)),
            "expected_value_fen": pa.array(np.nan_to_num(np.round(value), nan=0.0).astype(np.int64)),
        }
    )
    return Scored(table, purchase_model, spend_model)
