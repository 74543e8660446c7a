"""The stylized-facts code on synthetic series whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from agents.research.metrics import (
    MinuteSeries,
    acf,
    excess_kurtosis,
    horizon_returns,
    pooled_acf,
    pooled_acf_robust_se,
    stylized_facts,
)

N = 40_000


def prices_from(returns: np.ndarray) -> np.ndarray:
    return 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))


def garch(rng: np.random.Generator, n: int, omega=1e-7, alpha=0.1, beta=0.85) -> np.ndarray:
    """GARCH(1,1) with normal innovations: uncorrelated returns, correlated squares, excess
    kurtosis 6 alpha^2 / (1 - beta^2 - 2 alpha beta - 3 alpha^2) = 2.4 for these parameters."""
    r = np.empty(n)
    var = omega / (1 - alpha - beta)
    z = rng.standard_normal(n)
    for t in range(n):
        r[t] = np.sqrt(var) * z[t]
        var = omega + alpha * r[t] ** 2 + beta * var
    return r


def test_kurtosis_known_values():
    rng = np.random.default_rng(1)
    assert excess_kurtosis(rng.standard_normal(200_000)) == pytest.approx(0.0, abs=0.05)
    assert excess_kurtosis(rng.laplace(size=200_000)) == pytest.approx(3.0, abs=0.2)
    assert excess_kurtosis(rng.uniform(size=200_000)) == pytest.approx(-1.2, abs=0.02)
    assert np.isnan(excess_kurtosis([1.0, 2.0]))


def test_acf_known_values():
    rng = np.random.default_rng(2)
    e = rng.standard_normal(N)
    ar = np.empty(N)
    ar[0] = e[0]
    for t in range(1, N):
        ar[t] = 0.5 * ar[t - 1] + e[t]
    assert acf(ar, [1, 2, 3]) == pytest.approx([0.5, 0.25, 0.125], abs=0.02)
    assert np.all(np.abs(acf(e, range(1, 11))) < 4 / np.sqrt(N))
    # Pooling two halves matches the whole series (up to the one missing pair per lag).
    pooled = pooled_acf([ar[: N // 2], ar[N // 2 :]], [1, 2])
    assert pooled == pytest.approx(acf(ar, [1, 2]), abs=1e-3)


def test_robust_standard_errors():
    rng = np.random.default_rng(7)
    iid = rng.standard_normal(N)
    assert pooled_acf_robust_se([iid], [1, 5]) == pytest.approx([1 / np.sqrt(N)] * 2, rel=0.05)
    # Under GARCH the sample ACF varies more than 1/sqrt(N): the robust error is larger.
    r = garch(rng, N, alpha=0.15, beta=0.8)
    assert pooled_acf_robust_se([r], [1])[0] > 1.3 / np.sqrt(N)


def test_horizon_returns_are_non_overlapping():
    mids = np.array([100.0, 101, 102, 103, 104, 105, 106])
    assert horizon_returns(mids, 3) == pytest.approx(np.diff(np.log([100.0, 103, 106])))
    assert horizon_returns(np.array([100.0, np.nan, 100.0]), 1) == pytest.approx([0.0])


def facts_by_key(runs):
    return {f["key"]: f for f in stylized_facts(runs)["facts"]}


def test_iid_normal_returns_show_no_stylized_fact_but_the_absence_of_autocorrelation():
    rng = np.random.default_rng(3)
    runs = [
        MinuteSeries(prices_from(0.001 * rng.standard_normal(4000)), rng.poisson(100, 4001))
        for _ in range(5)
    ]
    facts = facts_by_key(runs)
    assert not facts["heavy_tails"]["met"]
    assert abs(facts["heavy_tails"]["value"]["1min"]) < 0.2
    assert facts["no_linear_autocorrelation"]["met"]
    assert not facts["volatility_clustering"]["met"]
    assert not facts["volume_volatility"]["met"]  # independent volume


def test_garch_returns_cluster_and_volume_with_volatility_is_detected():
    rng = np.random.default_rng(4)
    runs = []
    for _ in range(5):
        r = garch(rng, 20_000)
        volume = np.concatenate([[0.0], 1000 * np.abs(r) / r.std() + rng.poisson(50, r.size)])
        runs.append(MinuteSeries(prices_from(r), volume))
    facts = facts_by_key(runs)
    # Returns are uncorrelated (the known answer is 0 at every lag): the robust joint test agrees.
    linear = facts["no_linear_autocorrelation"]
    assert linear["met"], linear
    assert all(abs(linear["value"][f"lag{k}"]) < 4 / np.sqrt(100_000) for k in range(1, 11))
    assert facts["volatility_clustering"]["met"]
    assert facts["volume_volatility"]["met"]
    assert facts["volume_volatility"]["value"]["corr"] > 0.5
    # Excess kurtosis positive but below the GARCH(1,1) value of 2.4 (the sample kurtosis of a
    # heavy-tailed series is biased low), so the heavy-tail fact (> 3) is rightly not met.
    kurtosis = facts["heavy_tails"]["value"]
    assert 0.5 < kurtosis["1min"] < 3.0
    assert not facts["heavy_tails"]["met"]


def test_heavy_tails_thinning_with_the_horizon_are_detected():
    """Compound Poisson jumps on top of a diffusion: very heavy at 1 minute, thinning as the
    jumps are averaged with more diffusion (excess kurtosis ~ 1/h)."""
    rng = np.random.default_rng(5)
    runs = []
    for _ in range(4):
        n = 30_000
        jumps = rng.poisson(0.02, n) * rng.normal(0, 0.01, n)
        r = 0.001 * rng.standard_normal(n) + jumps
        runs.append(MinuteSeries(prices_from(r), rng.poisson(100, n + 1)))
    facts = facts_by_key(runs)
    k = facts["heavy_tails"]["value"]
    assert k["1min"] > 10 and k["1min"] > k["5min"] > k["10min"] > k["30min"]
    assert facts["heavy_tails"]["met"]


def test_linear_autocorrelation_is_detected():
    rng = np.random.default_rng(6)
    e = 0.001 * rng.standard_normal(20_000)
    r = e.copy()
    r[2:] += 0.3 * e[:-2]  # an MA(2) term: ACF(2) = 0.3 / 1.09
    facts = facts_by_key([MinuteSeries(prices_from(r), rng.poisson(100, r.size + 1))])
    assert not facts["no_linear_autocorrelation"]["met"]
    assert facts["no_linear_autocorrelation"]["value"]["lag2"] == pytest.approx(0.275, abs=0.03)
