"""CLV models: BG/NBD fitted on the CDNOW sample gives the published parameters (Fader, Hardie &
Lee 2005: r = 0.243, α = 4.414, a = 0.793, b = 2.426 on the 39-week calibration period), Gamma-
Gamma gives those of its paper (p = 6.25, q = 3.74, v = 15.44), and per-person predictions agree
with an independent implementation (the ``lifetimes`` package); the model inputs by hand."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest

from siyu.analytics.clv import (
    BgNbd,
    GammaGamma,
    clv_inputs,
    expected_purchases,
    expected_spend,
    fit_bgnbd,
    fit_gamma_gamma,
    p_alive,
)
from tests.test_analytics_rfm import AS_OF, purchases

lifetimes = pytest.importorskip("lifetimes")


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    return load_cdnow_summary_data_with_monetary_value()


def test_bgnbd_on_cdnow_gives_the_published_parameters(cdnow: pd.DataFrame) -> None:
    x, t_x, big_t = (cdnow[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    fitted = fit_bgnbd(x, t_x, big_t)
    assert fitted.r == pytest.approx(0.243, abs=0.001)
    assert fitted.alpha == pytest.approx(4.414, abs=0.005)
    assert fitted.a == pytest.approx(0.793, abs=0.002)
    assert fitted.b == pytest.approx(2.426, abs=0.005)


def test_gamma_gamma_on_cdnow_gives_the_published_parameters(cdnow: pd.DataFrame) -> None:
    fitted = fit_gamma_gamma(cdnow.frequency.to_numpy(dtype=float), cdnow.monetary_value.to_numpy(dtype=float))
    assert fitted.p == pytest.approx(6.25, abs=0.01)
    assert fitted.q == pytest.approx(3.74, abs=0.01)
    assert fitted.v == pytest.approx(15.44, abs=0.05)


def test_predictions_agree_with_lifetimes(cdnow: pd.DataFrame) -> None:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    model = BgNbd(0.243, 4.414, 0.793, 2.426)
    theirs = BetaGeoFitter()
    theirs.params_ = pd.Series({"r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b})
    x, t_x, big_t = (cdnow[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(
        p_alive(model, x, t_x, big_t), theirs.conditional_probability_alive(x, t_x, big_t), rtol=1e-9
    )
    np.testing.assert_allclose(
        expected_purchases(model, 39.0, x, t_x, big_t),
        theirs.conditional_expected_number_of_purchases_up_to_time(39.0, x, t_x, big_t),
        rtol=1e-7,
    )
    spend = GammaGamma(6.25, 3.74, 15.44)
    gg = GammaGammaFitter()
    gg.params_ = pd.Series({"p": spend.p, "q": spend.q, "v": spend.v})
    repeat = cdnow[cdnow.frequency > 0]
    np.testing.assert_allclose(
        expected_spend(spend, repeat.frequency.to_numpy(dtype=float), repeat.monetary_value.to_numpy(dtype=float)),
        gg.conditional_expected_average_profit(repeat.frequency, repeat.monetary_value),
        rtol=1e-9,
    )


def test_model_inputs_by_hand() -> None:
    rows = [
        ("two_days", 100, 3000),
        ("two_days", 100 - 1 / 24, 1000),  # the same day: one purchase occasion of 4,000
        ("two_days", 40, 5000),
        ("two_days", 10, 7000),
        ("once", 30, 9000),
    ]
    con = ibis.duckdb.connect()
    got = {
        r["profile_id"]: r for r in clv_inputs(con.create_table("p", purchases(rows)), AS_OF).to_pyarrow().to_pylist()
    }
    assert (got["two_days"]["x"], got["two_days"]["t_x"], got["two_days"]["T"]) == (2, 90.0, 100.0)
    assert got["two_days"]["m"] == 6000.0  # (5,000 + 7,000) / 2: the first occasion is not a repeat
    assert (got["once"]["x"], got["once"]["t_x"], got["once"]["T"], got["once"]["m"]) == (0, 0.0, 30.0, 0.0)


def test_fitting_needs_enough_people() -> None:
    from siyu.core.errors import ValidationFailedError

    with pytest.raises(ValidationFailedError, match="at least 10"):
        fit_bgnbd(np.zeros(3), np.zeros(3), np.ones(3))
