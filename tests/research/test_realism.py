"""The default population's stylized facts, on a smaller pooled set than ``make realism``.

``make realism`` runs the RMSC04-sized preset over 10 full days (seeds 1-10) and requires all four
facts as stated. Two days (about a minute and a half) are what the CI budget affords here; with
N = 778 returns the 2/sqrt(N) band is 0.072, wide enough that the slowly decaying ACF of |r|
(0.07-0.1 at lags 6-10 in the 10-seed run) is not reliably above it, so this test holds the
clustering fact to lags 1-5 and the other three facts exactly as ``make realism`` does."""

from __future__ import annotations

import pytest

from agents.research import preset, simulate_seeds


@pytest.mark.slow
def test_default_population_shows_the_stylized_facts(tmp_path):
    _, pooled = simulate_seeds(preset("rmsc04"), [1, 2], tmp_path, report=False)
    facts = {f["key"]: f for f in pooled["facts"]}
    band = pooled["band"]
    assert pooled["n_returns"] == 2 * 389

    heavy = facts["heavy_tails"]["value"]
    assert facts["heavy_tails"]["met"], heavy
    assert heavy["1min"] > 3 and heavy["1min"] > heavy["5min"] > heavy["10min"] > heavy["30min"]

    assert facts["no_linear_autocorrelation"]["met"], facts["no_linear_autocorrelation"]

    clustering = facts["volatility_clustering"]["value"]
    assert all(clustering[f"lag{k}"] > band for k in range(1, 6)), clustering
    assert all(clustering[f"lag{k}"] > 0 for k in range(6, 11)), clustering

    assert facts["volume_volatility"]["met"], facts["volume_volatility"]
