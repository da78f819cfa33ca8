"""The optimizers the training benchmark compares, built from whatever lossjax provides.

Each contender is an :class:`OptimizerSpec`: the lossjax names it needs (looked up with
``getattr(lossjax, name, None)``, so a lossjax without them reports the contender as
missing instead of failing), how to build it from a learning-rate schedule, and the centre
of its learning-rate grid. Every optimizer keeps its library defaults except the learning
rate: no hand-written parameter labels (Muon and its variants sort parameters with their
own default rule), no tuned betas, weight decays or preconditioner settings. One
exception: Shampoo runs in the configuration its docstring gives for Adam-scale learning
rates, close to the AlgoPerf-winning entry (Meta's distributed Shampoo): grafted onto Adam
(``graft_type="adam"``; the default is SGD grafting) with an averaged momentum
(``moving_average_for_momentum=True``; the default heavy ball multiplies the step by up to
``1/(1 − β1) = 10``, which put its best rate at the bottom of AdamW's grid in an earlier
run), one statistic per tensor axis (``best_effort_shape_interpretation=False``: the
reference's default merges a ``[64, 4, 16]`` attention kernel into a 4096-vector cut into
32 blocks with a ``128 × 128`` statistic each, 89x the parameters' bytes in state on the
char-LM, against 9x per axis), and inverse roots every 10 steps
(``preconditioning_compute_steps=10``; the default is every step), as SOAP's basis refresh
(``precondition_frequency=10``, default).

Grid centres: the Adam-scale methods 1e-2 (AdamW's best on these small models in a pilot
run lay between 3e-3 and 3e-2), Muon 2e-2 (its usual rate; its AdamW fallback uses the
same rate), NorMuon and AdaMuon 1e-2 (their steps have Adam's RMS of 0.2), Lion 1e-3
(a tenth of AdamW's, as its authors advise), PSGD Kron 3e-3, Prodigy 1 (a multiplier of
its own estimate). A centre can differ per workload (``centers``) when an earlier run put
the best rate at the edge of the grid: on the char-LM Lion's centre is 3e-3 and NorMuon's
and schedule-free AdamW's 3e-2 (their best rates were the top of the grid around the
defaults above); on the digits CNN Lion's is 3e-4 (bottom of its grid) and on the
autoencoder 3e-3 (top). The grid keeps the same factors and number of points.

The learning rate is a schedule ``step -> lr`` whose peak is a traced argument, so one
compiled training chunk serves every point of the grid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import optax

import lossjax

Schedule = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """A contender.

    ``build(schedule) -> GradientTransformation``; ``center_lr``: the middle of its grid;
    ``centers``: ``(workload, centre)`` pairs that replace ``center_lr`` on those
    workloads; ``requires``: the lossjax attributes ``build`` uses;
    ``eval_params(state, params)``: the point to evaluate (schedule-free methods average);
    ``schedule``: ``"cosine"`` (linear warm-up then cosine decay, as for everyone) or
    ``"constant"`` (linear warm-up then constant: schedule-free AdamW replaces the decay
    by its averaging).
    """

    name: str
    label: str
    requires: tuple[str, ...]
    build: Callable[[Schedule], optax.GradientTransformation]
    center_lr: float
    eval_params: Callable[[Any, Any], Any] | None = None
    schedule: str = "cosine"
    centers: tuple[tuple[str, float], ...] = ()

    def center(self, workload: str) -> float:
        """The centre of the grid on ``workload`` (``centers`` overrides ``center_lr``)."""
        return dict(self.centers).get(workload, self.center_lr)

    def available(self) -> bool:
        return all(getattr(lossjax, name, None) is not None for name in self.requires)


def _get(name: str) -> Any:
    return getattr(lossjax, name)


def _schedule_free_eval(state: Any, params: Any) -> Any:
    return _get("schedule_free_eval_params")(state, params)


SPECS: tuple[OptimizerSpec, ...] = (
    OptimizerSpec("adamw", "AdamW", ("adamw",), lambda s: _get("adamw")(s), 1e-2),
    OptimizerSpec("soap", "SOAP", ("soap",), lambda s: _get("soap")(s), 1e-2),
    OptimizerSpec("shampoo", "Shampoo (Adam grafting)", ("shampoo",),
                  lambda s: _get("shampoo")(s, graft_type="adam", moving_average_for_momentum=True,
                                            best_effort_shape_interpretation=False,
                                            preconditioning_compute_steps=10),
                  1e-2),
    OptimizerSpec("kron", "PSGD Kron", ("kron",), lambda s: _get("kron")(s), 3e-3),
    OptimizerSpec("muon", "Muon (default labels)", ("muon",), lambda s: _get("muon")(s), 2e-2),
    OptimizerSpec("normuon", "NorMuon", ("normuon",), lambda s: _get("normuon")(s), 1e-2,
                  centers=(("charlm", 3e-2),)),
    OptimizerSpec("adamuon", "AdaMuon", ("adamuon",), lambda s: _get("adamuon")(s), 1e-2),
    OptimizerSpec("mars_adamw", "MARS-AdamW", ("mars",), lambda s: _get("mars")(s), 1e-2),
    OptimizerSpec("cautious_adamw", "C-AdamW", ("cautious", "adamw"),
                  lambda s: _get("cautious")(_get("adamw")(s)), 1e-2),
    OptimizerSpec("lion", "Lion", ("lion",), lambda s: _get("lion")(s), 1e-3,
                  centers=(("charlm", 3e-3), ("digits_cnn", 3e-4), ("digits_autoencoder", 3e-3))),
    OptimizerSpec("schedule_free_adamw", "Schedule-free AdamW", ("schedule_free_adamw",),
                  lambda s: _get("schedule_free_adamw")(s), 1e-2,
                  eval_params=_schedule_free_eval, schedule="constant",
                  centers=(("charlm", 3e-2),)),
    OptimizerSpec("prodigy", "Prodigy", ("prodigy",), lambda s: _get("prodigy")(s), 1.0),
)
"""Every contender, AdamW (the baseline) first."""

BY_NAME = {spec.name: spec for spec in SPECS}


def select(names: Sequence[str] | None = None) -> tuple[list[OptimizerSpec], list[str]]:
    """The specs named (all when ``None``) that this lossjax has, and the names it lacks.

    AdamW is always included first: every figure is relative to it.
    """
    unknown = [n for n in names or () if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown optimizers {unknown}; choose from {sorted(BY_NAME)}")
    wanted = list(names) if names else [spec.name for spec in SPECS]
    if "adamw" not in wanted:
        wanted.insert(0, "adamw")
    specs = [BY_NAME[n] for n in wanted]
    return [s for s in specs if s.available()], [s.name for s in specs if not s.available()]
