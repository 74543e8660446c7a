"""Metaorder impact and the square-root law (``agents/research/impact.py``): the fit on synthetic
impacts whose exponent is known (square root, linear, none), the normalisation of one run's
metaorders against a synthetic market whose volume and volatility are known, and the fact's
three outcomes (met, not met, not measurable)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from agents.research import preset, simulate
from agents.research.impact import (
    MIN_METAORDERS,
    fit_impact,
    fitted_points,
    impact_fact,
    pooled_impact,
    run_impact,
    session_volatility,
)
from agents.research.outputs import OutputChoice
from agents.research.presets import IMPACT_METAORDERS

S = 1_000_000_000


def synthetic(delta: float, n: int, *, noise: float, additive: float = 0.0, seed: int = 1):
    """Q/V log-uniform over three decades and I/sigma = Y (Q/V)^delta (1 + noise * e1) +
    additive * e2, Y = 0.7 (Tóth et al. find Y of order one), e Gaussian."""
    rng = np.random.default_rng(seed)
    q = 10 ** rng.uniform(-4, -1, n)
    i = 0.7 * q**delta * (1 + noise * rng.standard_normal(n))
    return q, i + additive * rng.standard_normal(n)


def test_a_square_root_law_is_recovered_with_its_prefactor():
    q, i = synthetic(0.5, 1000, noise=1.0)
    fit = fit_impact(q, i)
    assert fit.delta == pytest.approx(0.5, abs=0.05)
    assert fit.prefactor == pytest.approx(0.7, rel=0.3)
    assert fit.ci_low < 0.5 < fit.ci_high and fit.ci_high - fit.ci_low < 0.2
    assert fit.bins_fitted == 10 and fit.r_squared > 0.9
    assert impact_fact({"fit": fit.to_dict(), "n_fitted": 1000, "unfinished": 0})["met"] is True


def test_binning_copes_with_impacts_that_are_mostly_noise_and_often_negative():
    # The market's own moves during execution swamp small metaorders' impact: a quarter of the
    # single impacts are negative (no log of them), yet the bins' means keep the law.
    q, i = synthetic(0.5, 4000, noise=0.5, additive=0.05)
    assert 0.2 < np.mean(i < 0) < 0.3
    assert np.mean(i[q < 1e-3] < 0) > 0.4  # among the smallest, nearly half
    fit = fit_impact(q, i)
    assert fit.delta == pytest.approx(0.5, abs=0.1)
    assert fit.ci_low < 0.5 < fit.ci_high


def test_a_linear_impact_is_told_apart():
    q, i = synthetic(1.0, 1000, noise=1.0)
    fit = fit_impact(q, i)
    assert fit.delta == pytest.approx(1.0, abs=0.05)
    assert fit.ci_low > 0.7  # the whole interval is outside the square-root band
    assert impact_fact({"fit": fit.to_dict(), "n_fitted": 1000, "unfinished": 0})["met"] is False


def test_no_impact_at_all_gives_no_law():
    rng = np.random.default_rng(3)
    q = 10 ** rng.uniform(-4, -1, 400)
    fit = fit_impact(q, 0.01 * rng.standard_normal(400))
    # Bins of pure noise: a slope near zero, whose interval covers zero (and reaches 0.5: the
    # reason the fact asks for an interval above zero as well as a slope in the band).
    assert abs(fit.delta) < 0.2 and fit.ci_low < 0 < fit.ci_high
    assert impact_fact({"fit": fit.to_dict(), "n_fitted": 400, "unfinished": 0})["met"] is False


def test_the_bootstrap_is_reproducible():
    q, i = synthetic(0.5, 300, noise=1.0)
    assert fit_impact(q, i) == fit_impact(q, i)


def test_session_volatility_is_the_minute_returns_sd_scaled_to_the_session():
    # 390 minutes whose log returns alternate +-0.001: sd 0.001 (ddof 1, nearly), sigma_day
    # 0.001 * sqrt(390).
    r = np.where(np.arange(389) % 2 == 0, 0.001, -0.001)
    minute_mids = 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    seconds = np.repeat(minute_mids, 60)
    assert session_volatility(seconds) == pytest.approx(np.std(r, ddof=1) * np.sqrt(390), rel=1e-9)
    assert np.isnan(session_volatility([100.0] * 90))  # one minute: no returns


def market(minutes: int = 60):
    """A market with a known path: the mid at 1,000 ticks, up to 1,010 between 10:00:00 and
    10:00:59 (seconds 600-659 of a 09:50 session), 50 lots traded each second."""
    start = (9 * 3600 + 50 * 60) * S
    mids = np.full(minutes * 60, 1000.0)
    mids[600:660] = 1010.0
    mids[1::2] += np.where(np.arange(minutes * 30) % 2 == 0, 1.0, -1.0)  # some volatility
    return SimpleNamespace(
        start_ns=start,
        mid_by_second=list(mids),
        volume_by_second=[50] * (minutes * 60),
        volume=50 * minutes * 60,
    )


def order(sign, done, start_s, end_s, arrival, end_mid, quantity=None):
    data = market()
    return {
        "sign": sign,
        "quantity": quantity or done,
        "done": done,
        "start_ns": data.start_ns + start_s * S,
        "end_ns": None if end_s is None else data.start_ns + end_s * S,
        "arrival": arrival,
        "end_mid": end_mid,
    }


def test_a_runs_metaorders_are_signed_and_normalised_by_its_volume_and_volatility():
    data = market()
    buy = order(1, 1800, 590, 630, 1000.0, 1010.0)
    sell = order(-1, 900, 590, 630, 1000.0, 1010.0)  # sold while it rose: negative impact
    unfinished = order(1, 300, 1000, None, 1000.0, None, quantity=500)
    run = run_impact([buy, sell, None, unfinished], data)  # None: an agent not yet started
    sigma = session_volatility(data.mid_by_second)
    assert run["volume_lots"] == 180_000 and run["sigma_day"] == pytest.approx(sigma, rel=1e-5)
    first, second, third = run["metaorders"]
    assert first["q_over_v"] == pytest.approx(0.01)
    assert first["impact_bps"] == pytest.approx(100.0)
    assert first["impact_over_sigma"] == pytest.approx(0.01 / sigma, rel=1e-5)
    assert first["duration_s"] == 40.0
    assert first["participation"] == pytest.approx(1800 / (41 * 50))  # seconds 590..630
    assert first["peak_bps"] == pytest.approx(110.0)  # 1,011 at an odd second in the window
    assert second["impact_bps"] == pytest.approx(-100.0) and second["q_over_v"] == 0.005
    assert third["finished"] is False and third["impact_over_sigma"] is None
    q, i = fitted_points([run])
    assert list(q) == pytest.approx([0.01, 0.005]) and i[0] == -i[1]


def test_the_fact_is_not_measurable_without_enough_metaorders():
    nothing = pooled_impact([])
    assert (nothing["n_metaorders"], nothing["fit"]) == (0, None)
    assert impact_fact(nothing)["met"] is None
    data = market()
    few = run_impact([order(1, 100, 10, 20, 1000.0, 1001.0)] * (MIN_METAORDERS - 1), data)
    assert impact_fact(pooled_impact([few]))["met"] is None
    enough = run_impact([order(1, 100, 10, 20, 1000.0, 1001.0)] * MIN_METAORDERS, data)
    pooled = pooled_impact([enough, few])
    assert pooled["n_fitted"] == 2 * MIN_METAORDERS - 1 and pooled["runs"] == 2
    # All the same size: one bin's worth of Q, no slope to fit, so measured and not met.
    assert impact_fact(pooled)["met"] is False


# -- a real day ----------------------------------------------------------------------------------


def test_the_impact_presets_metaorders_finish_in_their_horizon_and_are_measured(tmp_path):
    """The impact preset, one full day (about 40 s): every metaorder starts when scheduled and is
    done within its horizon (TWAP takes what is left at the horizon), the day is not wrecked by
    them, the fact is measured, and on average the largest metaorders move the price more than
    the smallest. Whether δ meets the law is the pooled runs' to say (docs/research.md)."""
    config = preset("impact")
    outputs = OutputChoice(tables=frozenset({"bars", "report"}))
    result = simulate(config, 1, tmp_path, outputs=outputs)
    summary = result.summary
    groups = {g["name"]: g for g in summary["config"]["agents"]}
    impact = summary["impact"]
    assert impact["n_metaorders"] == IMPACT_METAORDERS == impact["n_fitted"]
    for row, point in zip(summary["execution"], impact["metaorders"], strict=True):
        params = groups[row["name"]]["params"]
        assert row["left"] == 0 and point["finished"]
        # Started at its delay after a first wake within seconds of the open.
        assert params["delay_s"] <= point["start_s"] < params["delay_s"] + 30
        # Done by its horizon, give or take the wake (1 Hz) that sees it done.
        assert point["duration_s"] <= params["horizon_s"] + 30
    assert 0.005 < impact["sigma_day"] < 0.05  # a normal day, not a crash
    assert summary["prices"]["low_mid"] > 90 and summary["prices"]["median_spread_ticks"] <= 2
    fact = summary["stylized_facts"]["deeper"]["facts"][3]
    assert fact["key"] == "impact" and isinstance(fact["met"], bool)
    points = sorted(impact["metaorders"], key=lambda p: p["q_over_v"])
    quarter = len(points) // 4
    small = np.mean([p["impact_over_sigma"] for p in points[:quarter]])
    large = np.mean([p["impact_over_sigma"] for p in points[-quarter:]])
    assert large > small and large > 0
    assert (tmp_path / "plots" / "metaorder_impact.png").read_bytes()[:4] == b"\x89PNG"
    assert "| Square-root impact of metaorders |" in (tmp_path / "report.md").read_text()
