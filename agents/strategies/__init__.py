"""The agents' decision logic, free of I/O: the same classes run in the live runner (asyncio,
orders through the gateway) and in the research simulator (the Rust book called directly).

    >>> import random
    >>> from agents.strategies import STRATEGIES, AgentState, MarketView
    >>> maker = STRATEGIES["market_maker"]({"levels": 2}, random.Random(7))
    >>> view = MarketView.from_depth(0, [(99, 10)], [(101, 10)])
    >>> [(a.side, a.price, a.tag) for a in maker.decide(view, AgentState())]
    [('buy', 99, 'b0'), ('buy', 98, 'b1'), ('sell', 101, 'a0'), ('sell', 102, 'a1')]

Nothing in this package may import Django, Redis or asyncio (a test checks it).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from .base import (
    BUY,
    SELL,
    Action,
    AgentState,
    Cancel,
    MarketView,
    OpenOrder,
    ParamError,
    Params,
    Place,
    Replace,
    Side,
    Strategy,
    Trade,
    next_wake_ns,
)
from .execution import PovParams, PovStrategy, TwapParams, TwapStrategy
from .fundamental import Fundamental, FundamentalParams
from .market_maker import MarketMakerParams, MarketMakerStrategy
from .momentum import MomentumParams, MomentumStrategy
from .noise import NoiseParams, NoiseStrategy
from .value import ValueParams, ValueStrategy

__all__ = [
    "BUY",
    "SELL",
    "STRATEGIES",
    "Action",
    "AgentState",
    "Cancel",
    "Fundamental",
    "FundamentalParams",
    "MarketMakerParams",
    "MarketMakerStrategy",
    "MarketView",
    "MomentumParams",
    "MomentumStrategy",
    "NoiseParams",
    "NoiseStrategy",
    "OpenOrder",
    "ParamError",
    "Params",
    "Place",
    "PovParams",
    "PovStrategy",
    "Replace",
    "Side",
    "Strategy",
    "Trade",
    "TwapParams",
    "TwapStrategy",
    "ValueParams",
    "ValueStrategy",
    "make_strategy",
    "next_wake_ns",
    "validate_params",
]

#: Strategy classes by the name stored in an agent's configuration.
STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        NoiseStrategy,
        MarketMakerStrategy,
        MomentumStrategy,
        ValueStrategy,
        TwapStrategy,
        PovStrategy,
    )
}


def _strategy_class(name: str) -> type[Strategy]:
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise ParamError(
            "strategy", f"unknown strategy {name!r} (expected one of: {', '.join(STRATEGIES)})"
        ) from None


def validate_params(strategy: str, data: Mapping[str, Any] | None) -> Params:
    """The validated parameters of ``strategy`` from a mapping (defaults filled in); raises
    :class:`ParamError` naming the field (``"strategy"`` for an unknown strategy)."""
    return _strategy_class(strategy).params_cls.validate(data)


def make_strategy(
    strategy: str, params: Mapping[str, Any] | Params | None, rng: random.Random
) -> Strategy:
    """A ready strategy instance by registry name."""
    return _strategy_class(strategy)(params, rng)
