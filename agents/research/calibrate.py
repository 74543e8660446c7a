"""Calibration: fit a few population parameters so that simulated LOBSTER data has the moments of
a target (``python manage.py simulate calibrate --target DIR``; ``docs/research.md``).

The estimator is the **method of simulated moments** (McFadden 1989; Duffie and Singleton 1993):
find the parameters ``θ`` minimising

    J(θ) = Σ_k ((ḡ_k(θ) - g_k(target)) / s_k)²

over the chosen moments ``k`` (``moments.py``), where

* ``g_k`` is a moment on a log scale — the log of a rate, a ratio or a volatility, so errors are
  relative and units drop out; moments that are already means of logs (order sizes) are used as
  they are;
* ``ḡ_k(θ)`` is the simulated moment. Every candidate runs on the same seeds (common random
  numbers: the fundamental's and the activity's paths and each agent's random stream start the
  same), which removes the seeds' luck from the comparison of candidates;
* ``s_k`` is the simulation noise of moment ``k`` (below): a diagonal inverse-variance weighting,
  so noisy moments count less, floored at ``WEIGHT_FLOOR``.

Common random numbers alone do not make ``ḡ`` smooth: the market is chaotic — a 5 % change of
one parameter changes which orders meet, and the simulated moments then move by as much as a new
seed would move them (measured: finite-difference elasticities of the volume swing between -7 and
+7 at 5 % steps). A Gauss-Newton or Nelder-Mead search on such a surface chases that noise. So
``J`` is minimised through a **sequential response surface** (Box and Wilson 1951), a
derivative-free design search that averages the noise over many simulations:

1. on ``x = ln(θ / θ_start)`` (every parameter moves in relative steps), round ``r`` simulates
   a Latin-hypercube design of ``points`` candidates in the box ``centre ± width_r`` (within
   ``[θ_start / SPAN, θ_start · SPAN]`` and the parameter's own bounds), plus the centre;
2. a linear model ``g_k ≈ a_k + B_k · (x - centre)`` is fitted to every simulation so far
   (ordinary least squares, one per moment); its residual standard deviation is ``s_k``;
3. the model's weighted least-squares solution inside the box (``scipy.optimize.lsq_linear``)
   is the next centre; the box halves.

After the last round its solution is simulated too, and the answer is the centre (the start,
each round's, the last solution) whose simulated moments give the lowest ``J``. The design is
seeded, so a calibration is reproducible.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import lsq_linear
from scipy.stats import qmc

from agents.strategies import STRATEGIES, FundamentalParams

from .config import ConfigError, SimConfig, config_from_mapping
from .moments import MOMENTS, directory_moments
from .outputs import OutputChoice
from .run import simulate

__all__ = [
    "DEFAULT_MOMENTS",
    "DEFAULT_PARAMETERS",
    "CalibrationError",
    "CalibrationResult",
    "Parameter",
    "calibrate",
    "resolve_parameters",
]

#: The parameters fitted unless told otherwise, and the moments that pin them (docs/research.md).
#: ``noise.size_alpha`` (the order sizes' tail) can be added with ``parameters``, but trades off
#: against ``fundamental.sd`` (bigger orders move the price as a more volatile value does):
#: measured, fitting both sent the tail index to its bound.
DEFAULT_PARAMETERS = ("noise.wake_rate_hz", "noise.cross_prob", "fundamental.sd")
DEFAULT_MOMENTS = (
    "submissions_per_s",
    "trades_per_s",
    "volume_per_s",
    "mean_log_order_size",
    "mean_log_trade_size",
    "return_rms_1m",
    "return_rms_10s",
)
#: Moments that are already on a log scale (means of logs): compared as they are.
_LOG_SCALE = frozenset({"mean_log_order_size", "mean_log_trade_size"})
WEIGHT_FLOOR = 0.02
SPAN = 4.0
#: The group-level parameter every agent group has, with the configuration's bounds.
_WAKE_RATE = ("wake_rate_hz", 1e-6, 1e4)
_ONLY_LOBSTER = OutputChoice(
    tables=frozenset({"messages", "orderbook"}), formats=frozenset({"csv"})
)


class CalibrationError(ValueError):
    """A calibration that cannot be run as asked; the message names the parameter or moment."""


@dataclass(frozen=True)
class Parameter:
    """One fitted parameter: ``name`` as the user wrote it (``noise.wake_rate_hz``,
    ``noise.size_alpha``, ``fundamental.sd``), where it lives in the configuration's data, its
    start value and its bounds."""

    name: str
    group: int | None  # index into ``agents``; None for the fundamental
    key: str
    in_params: bool  # a strategy parameter (``agents[i].params``) rather than a group field
    start: float
    lo: float
    hi: float

    def get(self, data: dict) -> float:
        if self.group is None:
            return float(data["fundamental"][self.key])
        group = data["agents"][self.group]
        return float(group["params"][self.key] if self.in_params else group[self.key])

    def set(self, data: dict, value: float) -> None:
        if self.group is None:
            data["fundamental"][self.key] = value
        elif self.in_params:
            data["agents"][self.group]["params"][self.key] = value
        else:
            data["agents"][self.group][self.key] = value


def _real_bounds(model: type, key: str, name: str) -> tuple[float, float]:
    """The bounds of a real-valued field of a parameter model; an integer, boolean or text
    field cannot be fitted by a continuous search."""
    f = model.model_fields.get(key)
    if f is None:
        known = ", ".join(k for k, v in model.model_fields.items() if v.annotation is float)
        raise CalibrationError(f"unknown parameter {name!r} (real-valued ones there: {known})")
    if f.annotation is not float:
        raise CalibrationError(
            f"parameter {name!r} is not a real number ({getattr(f.annotation, '__name__', '?')}): "
            "only real-valued parameters can be fitted"
        )
    lo, hi = -math.inf, math.inf
    for m in f.metadata:  # pydantic keeps Field(ge=..., le=...) as annotated-types markers
        if getattr(m, "ge", None) is not None:
            lo = float(m.ge)
        if getattr(m, "le", None) is not None:
            hi = float(m.le)
    return lo, hi


def resolve_parameters(data: dict, names: Sequence[str]) -> list[Parameter]:
    """The parameters ``names`` of the configuration ``data`` (``SimConfig.to_dict()``'s
    shape): ``GROUP.wake_rate_hz``, ``GROUP.PARAM`` (a real-valued parameter of the group's
    strategy) or ``fundamental.KEY``. Raises :class:`CalibrationError` naming a parameter that
    is unknown, not real-valued, repeated or whose start value is not positive."""
    if not names:
        raise CalibrationError("no parameters to fit")
    groups = {g["name"]: i for i, g in enumerate(data["agents"])}
    out = []
    for name in names:
        head, dot, key = name.partition(".")
        if not dot or not key:
            raise CalibrationError(
                f"unknown parameter {name!r}: expected GROUP.wake_rate_hz, GROUP.PARAM or "
                f"fundamental.KEY (groups: {', '.join(groups)})"
            )
        if head == "fundamental":
            lo, hi = _real_bounds(FundamentalParams, key, name)
            if key in ("mean", "step_s"):
                raise CalibrationError(f"parameter {name!r} cannot be fitted from LOBSTER moments")
            p = Parameter(name, None, key, False, 0.0, lo, hi)
        elif head in groups:
            i = groups[head]
            if key == _WAKE_RATE[0]:
                p = Parameter(name, i, key, False, 0.0, _WAKE_RATE[1], _WAKE_RATE[2])
            else:
                model = STRATEGIES[data["agents"][i]["strategy"]].params_cls
                lo, hi = _real_bounds(model, key, name)
                p = Parameter(name, i, key, True, 0.0, lo, hi)
        else:
            raise CalibrationError(
                f"unknown parameter {name!r}: no agent group {head!r} "
                f"(groups: {', '.join(groups)}; or fundamental.KEY)"
            )
        start = p.get(data)
        if not start > 0:
            raise CalibrationError(
                f"parameter {name!r} starts at {start}: the search moves in relative steps "
                "and needs a positive start value"
            )
        if any(q.name == name for q in out):
            raise CalibrationError(f"parameter {name!r} is listed twice")
        out.append(
            Parameter(name, p.group, p.key, p.in_params, start, max(p.lo, start / SPAN),
                      min(p.hi, start * SPAN))
        )  # fmt: skip
    return out


def check_moments(names: Sequence[str], target: dict[str, float]) -> None:
    """Every moment is known and the target has a usable value of it."""
    if not names:
        raise CalibrationError("no moments to match")
    for name in names:
        if name not in MOMENTS:
            raise CalibrationError(
                f"unknown moment {name!r} (expected one of: {', '.join(MOMENTS)})"
            )
        value = target.get(name, math.nan)
        if not math.isfinite(value) or (name not in _LOG_SCALE and value <= 0):
            raise CalibrationError(
                f"the target's moment {name!r} is {value}: its LOBSTER data cannot give it "
                "(no such events, or too short a session); leave it out with --moments"
            )


def _scale(name: str, value: float) -> float:
    if name in _LOG_SCALE:
        return value
    return math.log(value) if value > 0 else -math.inf


@dataclass
class CalibrationResult:
    parameters: list[Parameter]
    fitted: dict[str, float]
    moment_names: list[str]
    target: dict[str, float]
    start_moments: dict[str, float]
    fitted_moments: dict[str, float]
    #: ``s_k`` of each moment (see the module's docstring).
    scales: dict[str, float]
    start_cost: float
    fitted_cost: float
    candidates: int
    simulations: int
    wall_s: float
    #: The fitted configuration's data (the base configuration with the fitted values).
    config: dict[str, Any] = field(default_factory=dict)


def _round(value: float) -> float:
    """Five significant digits: the fit is not more precise than that, and the YAML stays
    readable."""
    return float(f"{value:.5g}")


def calibrate(
    config: SimConfig,
    target: dict[str, float],
    *,
    parameters: Sequence[str] = DEFAULT_PARAMETERS,
    moments: Sequence[str] = DEFAULT_MOMENTS,
    seeds: Sequence[int] = (1,),
    rounds: int = 3,
    points: int | None = None,
    full_config: SimConfig | None = None,
    progress: Callable[[int, dict[str, float], dict[str, float]], None] | None = None,
) -> CalibrationResult:
    """Fits ``parameters`` of ``config`` (their values there are the start point) so that the
    simulated ``moments`` (each candidate run on every seed of ``seeds``) match ``target``
    (``moments.py``'s dictionary, e.g. ``directory_moments(DIR, tick_size)``). Each of
    ``rounds`` simulates ``points`` candidates (default ``3 * len(parameters)``) plus its centre.
    The fitted values are written into ``full_config`` (default ``config``): the configuration
    to save when ``config`` is a shortened session of it. ``progress(n, values, moments)`` is
    called after every candidate."""
    if rounds < 1:
        raise CalibrationError("rounds must be at least 1")
    if not seeds:
        raise CalibrationError("at least one seed is needed")
    names = list(moments)
    check_moments(names, target)
    base = config.to_dict()
    params = resolve_parameters(base, parameters)
    n_params = len(params)
    points = 3 * n_params if points is None else points
    if points < n_params + 1:
        raise CalibrationError(
            f"points must be at least {n_params + 1} (the parameters plus one) to fit the "
            "response surface"
        )
    tick = float(config.tick_size)
    g_target = np.array([_scale(k, target[k]) for k in names])
    started = time.perf_counter()
    x_lo = np.array([math.log(p.lo / p.start) for p in params])
    x_hi = np.array([math.log(p.hi / p.start) for p in params])
    xs: list[np.ndarray] = []  # one row per simulation (a candidate on one seed)
    gs: list[np.ndarray] = []

    def run(x: np.ndarray) -> dict[str, float]:
        """Simulates candidate ``x`` on every seed; records each run; returns the moments
        averaged over the seeds."""
        values = {p.name: p.start * math.exp(float(v)) for p, v in zip(params, x, strict=True)}
        data = copy.deepcopy(base)
        for p in params:
            p.set(data, values[p.name])
        try:
            candidate = config_from_mapping(data)
        except ConfigError as error:  # e.g. a value that breaks a cross-field rule
            raise CalibrationError(
                f"candidate {values} is not a valid configuration: {error}"
            ) from None
        rows = []
        for seed in seeds:
            with tempfile.TemporaryDirectory(prefix="flashbook-calibrate-") as scratch:
                simulate(candidate, seed, scratch, report=False, outputs=_ONLY_LOBSTER,
                         manifest=False)  # fmt: skip
                rows.append(directory_moments(scratch, tick))
            xs.append(x.copy())
            gs.append(np.array([_scale(k, rows[-1][k]) for k in names]))
        mean = {k: float(np.mean([r[k] for r in rows])) for k in names}
        if progress is not None:
            progress(len(xs) // len(seeds), values, mean)
        return mean

    centre = np.zeros(n_params)
    width = np.maximum(x_hi - x_lo, 0) / 2
    start_moments: dict[str, float] = {}
    centres: list[tuple[np.ndarray, dict[str, float]]] = []
    scales = np.full(len(names), WEIGHT_FLOOR)
    for r in range(rounds):
        lo, hi = np.maximum(centre - width, x_lo), np.minimum(centre + width, x_hi)
        design = qmc.LatinHypercube(d=n_params, rng=np.random.default_rng(r)).random(points)
        centre_moments = run(centre)
        centres.append((centre.copy(), centre_moments))
        if r == 0:
            start_moments = centre_moments
        for u in design:
            run(lo + u * (hi - lo))
        a, slopes, scales = _fit_surface(np.array(xs) - centre, np.array(gs))
        # A moment no candidate could produce (no trades at all) is left out of the step.
        use = np.isfinite(a) & np.all(np.isfinite(slopes), axis=1)
        step = lsq_linear(
            slopes[use] / scales[use, None],
            (g_target[use] - a[use]) / scales[use],
            bounds=(lo - centre, hi - centre),
        ).x
        centre = centre + step
        width = width / 2

    def cost(m: dict[str, float]) -> float:
        g = np.array([_scale(k, m[k]) for k in names])
        return float(np.sum(((g - g_target) / scales) ** 2))

    x_final = np.array(
        [
            math.log(_round(p.start * math.exp(float(v))) / p.start)
            for p, v in zip(params, centre, strict=True)
        ]
    )
    centres.append((x_final, run(x_final)))
    # The surface is a linear model of a curved, noisy response: its last solution is not always
    # better than a centre simulated on the way (measured: from the truth itself it drifted 33 %
    # in sd). The answer is the simulated centre that matches the target best.
    best_x, fitted_moments = min(centres, key=lambda c: cost(c[1]))
    fitted = {
        p.name: _round(p.start * math.exp(float(v))) for p, v in zip(params, best_x, strict=True)
    }
    full = (full_config or config).to_dict()
    for p in params:
        p.set(full, fitted[p.name])
    config_from_mapping(full)  # the written configuration must load

    return CalibrationResult(
        parameters=params,
        fitted=fitted,
        moment_names=names,
        target={k: target[k] for k in names},
        start_moments=start_moments,
        fitted_moments=fitted_moments,
        scales=dict(zip(names, map(float, scales), strict=True)),
        start_cost=cost(start_moments),
        fitted_cost=cost(fitted_moments),
        candidates=len(xs) // len(seeds),
        simulations=len(xs),
        wall_s=time.perf_counter() - started,
        config=full,
    )


def _fit_surface(dx: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per moment, the least-squares fit ``g ≈ a + B · dx`` over the simulations (rows):
    ``(a, B, s)`` with ``s`` the residual standard deviation, floored at WEIGHT_FLOOR. Runs
    where a moment is undefined are left out of that moment's fit."""
    n, p = dx.shape
    design = np.column_stack([np.ones(n), dx])
    a = np.full(g.shape[1], np.nan)
    slopes = np.full((g.shape[1], p), np.nan)
    scales = np.full(g.shape[1], WEIGHT_FLOOR)
    for k in range(g.shape[1]):
        ok = np.isfinite(g[:, k])
        if ok.sum() <= p + 1:
            continue
        coef, *_ = np.linalg.lstsq(design[ok], g[ok, k], rcond=None)
        a[k], slopes[k] = coef[0], coef[1:]
        resid = g[ok, k] - design[ok] @ coef
        scales[k] = max(float(np.sqrt(resid @ resid / (ok.sum() - p - 1))), WEIGHT_FLOOR)
    return a, slopes, scales
