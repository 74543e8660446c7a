"""The deeper realism checks on synthetic series whose answers are known: the Hill estimator on
Pareto, Student-t and normal samples; power-law fits on exact and long-memory series
(fractionally integrated noise, whose ACF decays as k^(2d-1)); order-flow signs with long
memory, with none, and with a short (Markov) memory."""

from __future__ import annotations

import numpy as np
import pytest

from agents.research.deeper_facts import deeper_facts
from agents.research.estimators import hill_tail_index, power_law_decay
from agents.research.metrics import MinuteSeries

N = 100_000


def fractional_noise(rng: np.random.Generator, n: int, d: float, memory: int = 20_000):
    """ARFIMA(0, d, 0): Gaussian noise filtered by (1 - L)^-d, truncated at ``memory`` lags.
    Its ACF decays as k^(2d - 1)."""
    j = np.arange(1, memory)
    weights = np.concatenate([[1.0], np.cumprod((j - 1 + d) / j)])
    e = rng.standard_normal(n + memory)
    size = 1 << int(np.ceil(np.log2(n + 2 * memory)))
    y = np.fft.irfft(np.fft.rfft(e, size) * np.fft.rfft(weights, size), size)
    return y[memory : memory + n]


def runs_from(returns: np.ndarray, days: int = 10) -> list[MinuteSeries]:
    """Split returns into ``days`` runs of minute mids (volumes are not used here)."""
    out = []
    for chunk in np.array_split(returns, days):
        mids = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(chunk)]))
        out.append(MinuteSeries(mids=mids, volumes=np.ones(mids.size)))
    return out


def facts(runs, signs):
    return {f["key"]: f for f in deeper_facts(runs, signs)["facts"]}


def test_hill_on_known_tails():
    rng = np.random.default_rng(1)
    pareto = rng.uniform(size=N) ** (-1 / 3)  # P(X > x) = x^-3 exactly
    alpha, k = hill_tail_index(pareto, 0.05)
    assert k == 5000 and alpha == pytest.approx(3.0, abs=0.15)
    # A Student-t with 3 degrees of freedom: index 3, approached from below at finite k.
    assert 2.4 < hill_tail_index(rng.standard_t(3, N))[0] < 3.1
    # No power-law tail: the estimate lands above the ceiling of 5.
    assert hill_tail_index(rng.standard_normal(N))[0] > 5.3
    assert np.isnan(hill_tail_index(rng.standard_normal(100))[0])  # k = 5 < 10


def test_power_law_fit_on_an_exact_decay_and_its_leading_run():
    lags = np.arange(1, 21)
    fit = power_law_decay(0.3 * lags**-0.35, lags)
    assert fit.exponent == pytest.approx(0.35, abs=1e-9) and fit.r_squared == pytest.approx(1.0)
    assert fit.lags == tuple(range(1, 21))
    values = 0.3 * lags**-0.35
    values[7] = -0.01  # a noisy lag ends the run: the fit keeps lags 1..7
    assert power_law_decay(values, lags).lags == tuple(range(1, 8))
    assert np.isnan(power_law_decay(values, lags, min_lags=10).exponent)
    # An exponential decay looks steeper and steeper: over lags 1..20, well above 1.
    assert power_law_decay(0.8**lags, lags).exponent > 1.5


def test_tail_index_fact():
    rng = np.random.default_rng(2)
    heavy = facts(runs_from(0.001 * rng.standard_t(3, 40_000)), [])["tail_index"]
    assert heavy["met"] and 2.3 < heavy["value"]["alpha"] < 3.2
    normal = facts(runs_from(0.001 * rng.standard_normal(40_000)), [])["tail_index"]
    assert not normal["met"] and normal["value"]["alpha"] > 5


def test_slow_decay_of_volatility_autocorrelation():
    rng = np.random.default_rng(3)
    # Log-volatility with long memory, d = 0.35: ACF(|r|) ~ k^-0.3 over the fitted lags.
    log_vol = fractional_noise(rng, N, 0.35)
    r = 0.001 * np.exp(0.5 * log_vol / log_vol.std()) * rng.standard_normal(N)
    slow = facts(runs_from(r, days=20), [])["abs_return_decay"]
    assert slow["met"], slow
    assert slow["value"]["beta"] == pytest.approx(0.3, abs=0.08)
    assert slow["value"]["lags_fitted"] == 20
    # i.i.d. returns: no clustering at all, so no decay to speak of.
    iid = facts(runs_from(0.001 * rng.standard_normal(N)), [])["abs_return_decay"]
    assert not iid["met"]


def test_long_memory_of_order_flow():
    rng = np.random.default_rng(4)
    # Signs of fractional noise with d = 0.25: ACF ~ (2/pi) arcsin(rho(k)) ~ k^-0.5.
    signs = np.sign(fractional_noise(rng, 2 * N, 0.25)).astype(np.int8)
    long = facts([], np.array_split(signs, 5))["order_flow_memory"]
    assert long["met"], long
    assert long["value"]["gamma"] == pytest.approx(0.5, abs=0.1)
    assert long["value"]["lag1"] > 0.15

    coin = rng.choice(np.array([-1, 1], dtype=np.int8), size=2 * N)
    assert not facts([], [coin])["order_flow_memory"]["met"]

    # Markov signs (the next sign repeats with probability 0.8): positive, but the ACF falls
    # as 0.6^k — short memory, a steep fitted exponent.
    flips = rng.uniform(size=2 * N) >= 0.8
    markov = np.where(np.cumsum(flips) % 2 == 0, 1, -1).astype(np.int8)
    short = facts([], [markov])["order_flow_memory"]
    assert short["value"]["lag1"] == pytest.approx(0.6, abs=0.02)
    assert not short["met"] and short["value"]["gamma"] > 1


def test_no_data_is_not_met_and_json_ready():
    import json

    empty = deeper_facts([], [])
    assert not any(f["met"] for f in empty["facts"])
    json.dumps(empty, allow_nan=False)
