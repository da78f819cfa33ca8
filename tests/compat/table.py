"""The substitution table: which optax/rlax name is replaced by which lossjax function.

Read top to bottom, this file is the whole harness configuration:

* :data:`SUBSTITUTIONS` maps an optax/rlax public name (its public path) to the lossjax
  function or class that replaces it (:class:`Sub`). A name is listed when lossjax provides
  the same thing: the same name, optax's ``*_schedule`` without the suffix, or a loss that
  lossjax names without optax's ``_loss`` suffix (README's loss table). optax's losses
  return the unreduced array, lossjax's the mean: every loss is called with
  ``reduction="none"`` (the porting recipe of ``docs/coming_from.md``). rlax functions that
  lossjax renamed take their arguments through a small adapter below, which only renames
  and reorders; an option lossjax lacks is passed on as given, so it fails visibly.
* :data:`ANNOTATIONS` maps lossjax's types to optax's, for the signatures optax's tests
  read; :data:`CLASSES_IN_PRIVATE_MODULES` names the classes replaced in optax's private
  modules too (where optax's tests build them).
* :data:`TEST_FILES` lists the installed test files that are run, by group. The ``fast``
  groups run in the suite (``tests/compat/test_compat.py``); every group runs in
  ``python -m bench.compat``.
* :data:`DIFFERENCES` maps a test case (pytest node id, relative to site-packages) to the
  reason it is expected to fail: a deliberate, documented difference (``docs/coming_from.md``,
  "Differences from optax and rlax"). :data:`OPTIMIZER_SIDE` maps optimizer-side failures
  still open to what they are, so the report names them; they are not differences.

Names not listed are deliberately not substituted: ``convex_kl_divergence`` (optax's
deprecated alias of ``generalized_kl_divergence``), ``optax.losses.l2_loss`` (half of
``mse``), ``dice_loss``/``multiclass_generalized_dice_loss`` (other smoothing and
weighting), ``optax.MultiSteps`` (a class; lossjax's ``multi_steps`` returns the
transformation), ``rlax.EmaState`` (rlax's own moving-average state, not optax's) and
``rlax.l2_loss``/``huber_loss`` (lossjax's TD losses fold the TD error in).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import lossjax


@dataclasses.dataclass(frozen=True)
class Sub:
    """A lossjax replacement: ``target`` is a dotted name under ``lossjax`` (or a callable
    adapter below); ``kwargs`` are defaults added to every call (``reduction="none"``)."""

    target: str | Callable[..., Any]
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def resolve(self) -> Any:
        if callable(self.target) and not isinstance(self.target, str):
            return self.target
        obj: Any = lossjax
        for part in self.target.split("."):
            obj = getattr(obj, part)
        return obj

    @property
    def label(self) -> str:
        name = self.target if isinstance(self.target, str) else self.target.__name__
        extra = "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        return f"lossjax.{name}(...{extra})" if extra else f"lossjax.{name}"


def _loss(name: str, **kwargs: Any) -> Sub:
    """An optax loss: lossjax's loss unreduced, like optax's."""
    return Sub(name, {"reduction": "none", **kwargs})


# The types lossjax's annotations name where optax's name its own (lossjax's path: optax's
# path). The dispatchers show lossjax's signatures with these types in optax's spelling,
# since optax's tests compare annotations with optax's objects (``ScheduleAsLearningRate``
# runs an optimizer only when its ``learning_rate`` is annotated ``ScalarOrSchedule``).
ANNOTATIONS: dict[str, str] = {
    "schedules.Schedule": "optax.schedules.Schedule",
}


# ----- rlax functions that lossjax renamed: argument renames and reorders only -----------

def rlax_n_step_bootstrapped_returns(r_t, discount_t, v_t, n, lambda_t=1.0, **options):
    """rlax's ``n_step_bootstrapped_returns(r_t, discount_t, v_t, n, lambda_t, ...)``."""
    return lossjax.n_step_returns(r_t, discount_t, v_t, n=n, lambda_=lambda_t, **options)


def rlax_truncated_generalized_advantage_estimation(r_t, discount_t, lambda_, values,
                                                    **options):
    """rlax's ``truncated_generalized_advantage_estimation(r_t, discount_t, lambda_,
    values, ...)``."""
    return lossjax.generalized_advantage_estimation(r_t, discount_t, values, lambda_=lambda_,
                                                    **options)


def rlax_clipped_surrogate_pg_loss(prob_ratios_t, adv_t, epsilon, **options):
    """rlax's ``clipped_surrogate_pg_loss(prob_ratios_t, adv_t, epsilon, ...)``."""
    return lossjax.clipped_surrogate_loss(prob_ratios_t, adv_t, epsilon=epsilon, **options)


SUBSTITUTIONS: dict[str, Sub] = {
    # optax.losses (the same objects as optax's deprecated top-level loss names)
    "optax.losses.cosine_distance": _loss("cosine_distance"),
    "optax.losses.cosine_similarity": _loss("cosine_similarity"),
    "optax.losses.ctc_loss": _loss("ctc_loss"),
    "optax.losses.generalized_kl_divergence": _loss("generalized_kl_divergence"),
    "optax.losses.hinge_loss": _loss("hinge"),
    "optax.losses.huber_loss": _loss("huber"),
    "optax.losses.kl_divergence": _loss("kl_divergence"),
    "optax.losses.kl_divergence_with_log_targets": _loss("kl_divergence", log_targets=True),
    "optax.losses.log_cosh": _loss("log_cosh"),
    "optax.losses.multiclass_hinge_loss": _loss("multiclass_hinge"),
    "optax.losses.multiclass_perceptron_loss": _loss("multiclass_perceptron"),
    "optax.losses.multiclass_sparsemax_loss": _loss("sparsemax_loss"),
    "optax.losses.ntxent": Sub("ntxent"),  # optax's ntxent is a scalar mean too
    "optax.losses.perceptron_loss": _loss("perceptron"),
    "optax.losses.poly_loss_cross_entropy": _loss("poly1_cross_entropy"),
    "optax.losses.ranking_softmax_loss": Sub("ranking_softmax"),  # optax's is a mean too
    "optax.losses.safe_softmax_cross_entropy": _loss("softmax_cross_entropy"),
    "optax.losses.sigmoid_binary_cross_entropy": _loss("sigmoid_binary_cross_entropy"),
    "optax.losses.sigmoid_focal_loss": _loss("sigmoid_focal_loss"),
    "optax.losses.softmax_cross_entropy": _loss("softmax_cross_entropy"),
    "optax.losses.softmax_cross_entropy_with_integer_labels":
        _loss("softmax_cross_entropy_with_integer_labels"),
    "optax.losses.sparsemax_loss": _loss("binary_sparsemax_loss"),  # optax's is binary
    "optax.losses.squared_error": _loss("mse"),
    "optax.losses.triplet_margin_loss": _loss("triplet_margin"),
    # optax.schedules (optax's *_schedule names lose the suffix in lossjax.schedules)
    "optax.schedules.constant_schedule": Sub("schedules.constant"),
    "optax.schedules.cosine_decay_schedule": Sub("schedules.cosine_decay"),
    "optax.schedules.cosine_onecycle_schedule": Sub("schedules.cosine_onecycle"),
    "optax.schedules.exponential_decay": Sub("schedules.exponential_decay"),
    "optax.schedules.join_schedules": Sub("schedules.join"),
    "optax.schedules.linear_onecycle_schedule": Sub("schedules.linear_onecycle"),
    "optax.schedules.linear_schedule": Sub("schedules.linear"),
    "optax.schedules.piecewise_constant_schedule": Sub("schedules.piecewise_constant"),
    "optax.schedules.piecewise_interpolate_schedule": Sub("schedules.piecewise_interpolate"),
    "optax.schedules.polynomial_schedule": Sub("schedules.polynomial"),
    "optax.schedules.sgdr_schedule": Sub("schedules.sgdr"),
    "optax.schedules.warmup_constant_schedule": Sub("schedules.warmup_constant"),
    "optax.schedules.warmup_cosine_decay_schedule": Sub("schedules.warmup_cosine_decay"),
    "optax.schedules.warmup_exponential_decay_schedule":
        Sub("schedules.warmup_exponential_decay"),
    # rlax (single trajectories; lossjax's take any batch axes after time)
    "rlax.clipped_surrogate_pg_loss": Sub(rlax_clipped_surrogate_pg_loss),
    "rlax.discounted_returns": Sub("discounted_returns"),
    "rlax.entropy_loss": Sub("entropy_loss"),
    "rlax.lambda_returns": Sub("lambda_returns"),
    "rlax.n_step_bootstrapped_returns": Sub(rlax_n_step_bootstrapped_returns),
    "rlax.policy_gradient_loss": Sub("policy_gradient_loss"),
    "rlax.truncated_generalized_advantage_estimation":
        Sub(rlax_truncated_generalized_advantage_estimation),
    "rlax.vtrace": Sub("vtrace"),
    # optax's optimizers, transforms, wrappers and their states (top level, which holds
    # optax.transforms' names too)
    "optax.ApplyIfFiniteState": Sub("ApplyIfFiniteState"),
    "optax.ClipByGlobalNormState": Sub("ClipByGlobalNormState"),
    "optax.EmaState": Sub("EmaState"),
    "optax.FactoredState": Sub("FactoredState"),
    "optax.InjectHyperparamsState": Sub("InjectHyperparamsState"),
    "optax.LookaheadParams": Sub("LookaheadParams"),
    "optax.LookaheadState": Sub("LookaheadState"),
    "optax.MaskedNode": Sub("MaskedNode"),
    "optax.MaskedState": Sub("MaskedState"),
    "optax.MultiStepsState": Sub("MultiStepsState"),
    "optax.PartitionState": Sub("PartitionState"),
    "optax.ScaleByAdaDeltaState": Sub("ScaleByAdaDeltaState"),
    "optax.ScaleByAdamState": Sub("ScaleByAdamState"),
    "optax.ScaleByAdanState": Sub("ScaleByAdanState"),
    "optax.ScaleByAmsgradState": Sub("ScaleByAmsgradState"),
    "optax.ScaleByBeliefState": Sub("ScaleByBeliefState"),
    "optax.ScaleByLBFGSState": Sub("ScaleByLBFGSState"),
    "optax.ScaleByLionState": Sub("ScaleByLionState"),
    "optax.ScaleByNovogradState": Sub("ScaleByNovogradState"),
    "optax.ScaleByRmsState": Sub("ScaleByRmsState"),
    "optax.ScaleByRpropState": Sub("ScaleByRpropState"),
    "optax.ScaleByTrustRatioState": Sub("ScaleByTrustRatioState"),
    "optax.ScaleByZoomLinesearchState": Sub("ScaleByZoomLinesearchState"),
    "optax.TraceState": Sub("TraceState"),
    "optax.ZeroNansState": Sub("ZeroNansState"),
    "optax.ZoomLinesearchInfo": Sub("ZoomLinesearchInfo"),
    "optax.adabelief": Sub("adabelief"),
    "optax.adadelta": Sub("adadelta"),
    "optax.adafactor": Sub("adafactor"),
    "optax.adagrad": Sub("adagrad"),
    "optax.adam": Sub("adam"),
    "optax.adamax": Sub("adamax"),
    "optax.adamaxw": Sub("adamaxw"),
    "optax.adamw": Sub("adamw"),
    "optax.adan": Sub("adan"),
    "optax.adaptive_grad_clip": Sub("adaptive_grad_clip"),
    "optax.add_decayed_weights": Sub("add_decayed_weights"),
    "optax.amsgrad": Sub("amsgrad"),
    "optax.apply_if_finite": Sub("apply_if_finite"),
    "optax.centralize": Sub("centralize"),
    "optax.clip": Sub("clip"),
    "optax.clip_by_block_rms": Sub("clip_by_block_rms"),
    "optax.clip_by_global_norm": Sub("clip_by_global_norm"),
    "optax.ema": Sub("ema"),
    "optax.freeze": Sub("freeze"),
    "optax.global_norm": Sub("global_norm"),
    "optax.inject_hyperparams": Sub("inject_hyperparams"),
    "optax.lamb": Sub("lamb"),
    "optax.lars": Sub("lars"),
    "optax.lbfgs": Sub("lbfgs"),
    "optax.lion": Sub("lion"),
    "optax.lookahead": Sub("lookahead"),
    "optax.masked": Sub("masked"),
    "optax.nadam": Sub("nadam"),
    "optax.nadamw": Sub("nadamw"),
    "optax.novograd": Sub("novograd"),
    "optax.partition": Sub("partition"),
    "optax.polyak_sgd": Sub("polyak_sgd"),
    "optax.radam": Sub("radam"),
    "optax.rmsprop": Sub("rmsprop"),
    "optax.rprop": Sub("rprop"),
    "optax.scale": Sub("scale"),
    "optax.scale_by_adadelta": Sub("scale_by_adadelta"),
    "optax.scale_by_adam": Sub("scale_by_adam"),
    "optax.scale_by_adamax": Sub("scale_by_adamax"),
    "optax.scale_by_adan": Sub("scale_by_adan"),
    "optax.scale_by_amsgrad": Sub("scale_by_amsgrad"),
    "optax.scale_by_belief": Sub("scale_by_belief"),
    "optax.scale_by_factored_rms": Sub("scale_by_factored_rms"),
    "optax.scale_by_lbfgs": Sub("scale_by_lbfgs"),
    "optax.scale_by_learning_rate": Sub("scale_by_learning_rate"),
    "optax.scale_by_lion": Sub("scale_by_lion"),
    "optax.scale_by_novograd": Sub("scale_by_novograd"),
    "optax.scale_by_param_block_rms": Sub("scale_by_param_block_rms"),
    "optax.scale_by_polyak": Sub("scale_by_polyak"),
    "optax.scale_by_radam": Sub("scale_by_radam"),
    "optax.scale_by_rms": Sub("scale_by_rms"),
    "optax.scale_by_rprop": Sub("scale_by_rprop"),
    "optax.scale_by_sign": Sub("scale_by_sign"),
    "optax.scale_by_trust_ratio": Sub("scale_by_trust_ratio"),
    "optax.scale_by_yogi": Sub("scale_by_yogi"),
    "optax.scale_by_zoom_linesearch": Sub("scale_by_zoom_linesearch"),
    "optax.sgd": Sub("sgd"),
    "optax.sign_sgd": Sub("sign_sgd"),
    "optax.signum": Sub("signum"),
    "optax.trace": Sub("trace"),
    "optax.value_and_grad_from_state": Sub("value_and_grad_from_state"),
    "optax.yogi": Sub("yogi"),
    "optax.zero_nans": Sub("zero_nans"),
    # optax.contrib
    "optax.contrib.DAdaptAdamWState": Sub("DAdaptAdamWState"),
    "optax.contrib.DoGState": Sub("DoGState"),
    "optax.contrib.MuonDimensionNumbers": Sub("MuonDimensionNumbers"),
    "optax.contrib.MuonState": Sub("MuonState"),
    "optax.contrib.ProdigyState": Sub("ProdigyState"),
    "optax.contrib.ReduceLROnPlateauState": Sub("ReduceLROnPlateauState"),
    "optax.contrib.ScaleByAdemamixState": Sub("ScaleByAdemamixState"),
    "optax.contrib.ScheduleFreeState": Sub("ScheduleFreeState"),
    "optax.contrib.ademamix": Sub("ademamix"),
    "optax.contrib.adopt": Sub("adopt"),
    "optax.contrib.dadapt_adamw": Sub("dadapt_adamw"),
    "optax.contrib.dog": Sub("dog"),
    "optax.contrib.muon": Sub("muon"),
    "optax.contrib.prodigy": Sub("prodigy"),
    "optax.contrib.reduce_on_plateau": Sub("reduce_on_plateau"),
    "optax.contrib.scale_by_ademamix": Sub("scale_by_ademamix"),
    "optax.contrib.scale_by_adopt": Sub("scale_by_adopt"),
    "optax.contrib.schedule_free_adamw": Sub("schedule_free_adamw"),
    "optax.contrib.schedule_free_eval_params": Sub("schedule_free_eval_params"),
    "optax.contrib.schedule_free_sgd": Sub("schedule_free_sgd"),
}

# Classes also replaced in optax's private modules, where optax's tests build them
# (``_reduce_on_plateau.ReduceLROnPlateauState(...)``, ``transform.ScaleByAdamState(...)``
# as an expected state): lossjax's class has optax's fields, so optax code that lossjax
# does not replace and that builds one (an optax-only optimizer chaining
# ``scale_by_adam``) still works. Other classes stay optax's there (``optax.MultiSteps``,
# which lossjax does not replace, needs its own ``MultiStepsState``).
CLASSES_IN_PRIVATE_MODULES: frozenset[str] = frozenset({
    "optax.contrib.ReduceLROnPlateauState",
    "optax.ScaleByAdamState",
    "optax.ZeroNansState",
})

TEST_FILES: dict[str, tuple[str, ...]] = {
    "losses": (
        "optax/losses/_classification_test.py",
        "optax/losses/_ranking_test.py",
        "optax/losses/_regression_test.py",
        "optax/losses/_self_supervised_test.py",
    ),
    "rlax": (
        "rlax/_src/multistep_test.py",
        "rlax/_src/policy_gradients_test.py",
        "rlax/_src/vtrace_test.py",
    ),
    "schedules": (
        "optax/schedules/_join_test.py",
        "optax/schedules/_schedule_test.py",
    ),
    "optimizers": (
        "optax/_src/alias_test.py",
        "optax/_src/combine_test.py",
        "optax/_src/factorized_test.py",
        "optax/_src/float64_test.py",
        "optax/_src/linesearch_test.py",
        "optax/_src/lookahead_test.py",
        "optax/_src/transform_test.py",
        "optax/contrib/_common_test.py",
        "optax/contrib/_complex_valued_test.py",
        "optax/contrib/_muon_test.py",
        "optax/contrib/_reduce_on_plateau_test.py",
        "optax/contrib/_schedule_free_test.py",
        "optax/schedules/_inject_test.py",
        "optax/transforms/_accumulation_test.py",
        "optax/transforms/_adding_test.py",
        "optax/transforms/_clipping_test.py",
        "optax/transforms/_combining_test.py",
        "optax/transforms/_conditionality_test.py",
        "optax/transforms/_constraining_test.py",
        "optax/transforms/_freezing_test.py",
        "optax/transforms/_masking_test.py",
        "optax/transforms/_monitoring_test.py",
        "optax/tree_utils/_state_utils_test.py",
    ),
}

# The groups that run inside the test suite (the rest only in ``python -m bench.compat``,
# to keep the suite's cost near a CPU-minute).
FAST_GROUPS = ("losses", "rlax")

# Reasons of the documented differences (each also in docs/coming_from.md, verbatim).
AXIS = ("optax's `axis` may be a tuple of axes, flattened into one class axis, and may be "
        "passed positionally; lossjax takes one class axis, keyword-only.")
CTC = ("lossjax's `ctc_loss` takes `logit_lengths` and `label_lengths` (PyTorch's convention) "
       "instead of optax's padding masks.")
REDUCE_FN = ("lossjax's `ranking_softmax` reduces with `reduction` like every lossjax loss, "
             "not with optax's `reduce_fn`; its per-item weights are `item_weights` (its "
             "`weights` are per list).")
RL_LAMBDA = ("rlax takes `lambda_` positionally; lossjax's options are keyword-only "
             "(`lambda_=`).")
RL_WEIGHTS = ("rlax's `w_t` is a required positional argument; in lossjax it is the "
              "keyword-only `weights=` of the loss contract.")
SCHEDULE_STEPS = ("lossjax's schedules raise `ValueError` for a step count or decay rate that "
                  "is not positive, where optax silently returns a constant schedule.")
SCHEDULE_SIGN = ("lossjax's schedules are learning rates: a negative value (`init_value`, "
                 "`end_value`) raises `ValueError`, where optax computes it.")

LINESEARCH_CHECKS = ("lossjax's `scale_by_zoom_linesearch` checks its constants when it is "
                     "built (`ValueError` for `increase_factor` <= 1 or `curv_rtol` <= "
                     "`slope_rtol`); optax's dtype test builds it with 1e-5 for every "
                     "constant.")
LINESEARCH_WORDING = ("With `verbose=True` lossjax's zoom line search prints its own one-line "
                      "diagnosis (which condition failed and why); optax's tests look for "
                      "optax's wording.")
MUON_LABELS = ("lossjax's `muon` chooses its Muon leaves from the parameters' paths and "
               "shapes (`muon_labels`: 3-D attention kernels are Muon matrices, embeddings "
               "and output heads are not); optax's sends exactly the 2-D leaves to Muon, and "
               "its test expects a 3-D leaf on AdamW.")
SCHEDULE_FREE_WARMUP = ("lossjax's `schedule_free_sgd` and `schedule_free_adamw` take a "
                        "schedule as `learning_rate` (optax's take a float, so optax's test "
                        "skips them) but not together with `warmup_steps` (`ValueError`: put "
                        "the warm-up in the schedule); the test passes `warmup_steps=5000`.")
INJECT_DTYPE = ("lossjax's `inject_hyperparams` stores float hyperparameters in float32 at "
                "least (or `hyperparam_dtype`), also for bfloat16 parameters and for arrays "
                "given in bfloat16 (0.999 is 1.0 in bfloat16); optax stores them in the "
                "parameters' dtype and keeps an array's own.")
VALIDATE_EARLY = ("lossjax checks an option when the transformation is built (`ValueError` "
                  "from `scale_by_lion(mode=...)`); optax only at the first `update`.")

_CE = "optax/losses/_classification_test.py::"
_RANK = "optax/losses/_ranking_test.py::RankingLossesTest::"
_SCHED = "optax/schedules/_schedule_test.py::"
_ZOOM = "optax/_src/linesearch_test.py::ZoomLinesearchTest::"

DIFFERENCES: dict[str, str] = {
    _CE + "CTCTest::test_repeat_with_one_to_one_alignment": CTC,
    _CE + "CTCTest::test_with_one_to_one_alignment_and_paddings": CTC,
    _CE + "SoftmaxCrossEntropyWithIntegerLabelsTest::test_axes*": AXIS,
    _RANK + "test_computes_loss_for_zero_labels*": REDUCE_FN,
    _RANK + "test_computes_loss_value0": REDUCE_FN,
    _RANK + "test_computes_loss_value_with_vmap*": REDUCE_FN,
    _RANK + "test_computes_loss_with_extreme_inputs*": REDUCE_FN,
    _RANK + "test_computes_reduced_loss*": REDUCE_FN,
    _RANK + "test_computes_unreduced_loss*": REDUCE_FN,
    _RANK + "test_computes_weighted_loss_value*": REDUCE_FN,
    _RANK + "test_grad_does_not_return_nan_for_zero_labels*": REDUCE_FN,
    _RANK + "test_grad_does_not_return_nan_with_all_masked*": REDUCE_FN,
    "rlax/_src/multistep_test.py::NStepBootstrappedReturnsTest::test_reduces_to_lambda_returns":
        RL_LAMBDA,
    "rlax/_src/multistep_test.py::TDErrorTest::test_importance_corrected_td_errors_batch*":
        RL_LAMBDA,
    "rlax/_src/vtrace_test.py::VTraceTest::test_vtrace_lambda_multiple_episodes_per_trace*":
        RL_LAMBDA,
    "rlax/_src/policy_gradients_test.py::EntropyLossTest::test_entropy_loss_batch*": RL_WEIGHTS,
    "rlax/_src/policy_gradients_test.py::PolicyGradientLossTest::"
    "test_policy_gradient_loss_batch*": RL_WEIGHTS,
    _SCHED + "ExponentialTest::test_nonvalid_decay_rate*": SCHEDULE_STEPS,
    _SCHED + "ExponentialTest::test_nonvalid_transition_steps*": SCHEDULE_STEPS,
    _SCHED + "PolynomialTest::test_zero_steps_schedule": SCHEDULE_STEPS,
    _SCHED + "PiecewiseConstantTest::test_negative": SCHEDULE_SIGN,
    _SCHED + "WarmupCosineDecayTest::test_with_exponent": SCHEDULE_SIGN,
    _ZOOM + "test_dtype_stability*": LINESEARCH_CHECKS,
    _ZOOM + "test_failure_descent_direction": LINESEARCH_WORDING,
    _ZOOM + "test_failure_flat_fun": LINESEARCH_WORDING,
    _ZOOM + "test_failure_too_small_max_stepsize": LINESEARCH_WORDING,
    "optax/_src/transform_test.py::TransformTest::test_lion_invalid_mode_raises":
        VALIDATE_EARLY,
    "optax/contrib/_muon_test.py::MuonTest::test_dim_nums_combinations*": MUON_LABELS,
    "optax/contrib/_common_test.py::ContribTest::"
    "test_optimizers_accept_learning_rate_schedule_if_type_annotated_as_such14":
        SCHEDULE_FREE_WARMUP,
    "optax/contrib/_common_test.py::ContribTest::"
    "test_optimizers_accept_learning_rate_schedule_if_type_annotated_as_such15":
        SCHEDULE_FREE_WARMUP,
    "optax/schedules/_inject_test.py::InjectHyperparamsTest::test_hyperparam_default_dtype*":
        INJECT_DTYPE,
}

# Open optimizer-side findings (lossjax/optimizers is another scope): reported by
# ``python -m bench.compat`` in their own column, never excused in the suite.
OPTIMIZER_SIDE: dict[str, str] = {}
