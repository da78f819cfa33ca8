"""lossjax's post-training losses against TRL's own code (not a transcription).

TRL's trainers import transformers, accelerate and datasets, which lossjax does not need;
this script needs only torch and TRL's source: it reads the loss methods out of a TRL wheel
(``pip download trl --no-deps``) with ``ast`` and runs them on stand-in trainer objects:
``GRPOTrainer._compute_loss`` (every ``loss_type``, token- and sequence-level importance
sampling, the k3 KL and the clip-ratio metrics), ``CPOTrainer.cpo_loss`` and
``GKDTrainer.generalized_jsd_loss``. (KTO's loss sits inside a method that also runs the
models, so ``kto_loss`` is checked against the transcription in ``tests/`` only.) The
inputs are a padded float64 batch with completion lengths 1..T; it prints the largest
relative difference of each loss value (and of the GRPO gradient w.r.t. the
log-probabilities, its KL and clip-fraction metrics).

    pip download trl==1.16.0 --no-deps -d /tmp/trl
    python -m bench.trl_parity /tmp/trl/trl-1.16.0-py3-none-any.whl

Not part of the test suite (torch is no test dependency).
"""

from __future__ import annotations

import ast
import collections
import math
import sys
import types
import zipfile

import jax
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

import lossjax

jax.config.update("jax_enable_x64", True)


def _method(wheel: str, path: str, cls: str, name: str):
    """The function ``cls.name`` of ``path`` in the wheel, compiled alone."""
    source = zipfile.ZipFile(wheel).read(path).decode()
    tree = ast.parse(source)
    (klass,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
    (fn,) = [n for n in klass.body if isinstance(n, ast.FunctionDef) and n.name == name]
    fn.decorator_list = []
    module = ast.Module(body=[fn], type_ignores=[])
    namespace = {"torch": torch, "F": F, "math": math, "nanmin": torch.min, "nanmax": torch.max}
    exec(compile(module, path, "exec"), namespace)  # noqa: S102 (TRL's own code, read-only)
    return namespace[name]


class _Accelerator:
    num_processes = 1
    sync_gradients = True
    device = "cpu"

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x


def _grpo_trainer(loss_type: str, beta: float, eps: float, eps_high: float, logps):
    level = "sequence" if loss_type == "gspo" else "token"
    return types.SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logps, torch.zeros_like(logps), None),
        top_entropy_quantile=1.0, off_policy_mask_threshold=None,
        importance_sampling_level=level, beta=beta,
        loss_type="grpo" if loss_type == "gspo" else loss_type,
        epsilon_low=eps, epsilon_high=eps_high, use_vllm=False,
        args=types.SimpleNamespace(delta=None, use_bias_correction_kl=False,
                                   steps_per_generation=1),
        model=types.SimpleNamespace(training=True), current_gradient_accumulation_steps=1,
        max_completion_length=logps.shape[1], accelerator=_Accelerator(),
        _metrics={"train": collections.defaultdict(list)}, _entropy_bonus_enabled=False,
        aux_loss_enabled=False)


def grpo(wheel: str, rng: np.random.Generator) -> list[tuple[str, float]]:
    compute_loss = _method(wheel, "trl/trainer/grpo_trainer.py", "GRPOTrainer", "_compute_loss")
    b, t = 6, 7
    lengths = np.array([1, 3, 7, 2, 5, 4])
    mask = (np.arange(t)[None] < lengths[:, None]).astype(np.float64)
    lp = -rng.uniform(0.05, 3.0, (b, t))
    old = lp + rng.uniform(-0.35, 0.35, (b, t))
    ref = lp + rng.uniform(-0.5, 0.5, (b, t))
    adv = rng.normal(size=b)
    rows = []
    for loss_type in ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "gspo"):
        eps, eps_high = (3e-2, 4e-2) if loss_type == "gspo" else (0.2, 0.28)
        eps_high = 1.2 if loss_type == "cispo" else eps_high
        logps = torch.tensor(lp, requires_grad=True)
        trainer = _grpo_trainer(loss_type, 0.04, eps, eps_high, logps)
        inputs = {"prompt_ids": torch.zeros((b, 1), dtype=torch.long),
                  "prompt_mask": torch.ones((b, 1)), "completion_ids": torch.zeros((b, t)),
                  "completion_mask": torch.tensor(mask), "advantages": torch.tensor(adv),
                  "old_per_token_logps": torch.tensor(old),
                  "ref_per_token_logps": torch.tensor(ref),
                  "num_items_in_batch": torch.tensor(mask.sum())}
        value = compute_loss(trainer, None, inputs)
        value.backward()
        metrics = trainer._metrics["train"]

        def ours(x, loss_type=loss_type, eps=eps, eps_high=eps_high):
            return lossjax.grpo_loss(x, old, adv, ref_logprobs=ref, where=mask > 0,
                                     loss_type=loss_type, epsilon=eps, epsilon_high=eps_high,
                                     beta=0.04, return_metrics=True)

        (our_value, our_metrics), our_grad = jax.value_and_grad(ours, has_aux=True)(lp)
        grad = logps.grad.numpy()
        err = max(abs(float(our_value) - value.item()) / abs(value.item()),
                  float(np.max(np.abs(np.asarray(our_grad) - grad)) / np.max(np.abs(grad))),
                  abs(float(our_metrics.kl) - metrics["kl"][0]) / metrics["kl"][0])
        if loss_type != "cispo":
            err = max(err, abs(float(our_metrics.clip_fraction)
                               - metrics["clip_ratio/region_mean"][0]))
        rows.append((f"grpo_loss loss_type={loss_type!r}", err))
    return rows


def cpo(wheel: str, rng: np.random.Generator) -> list[tuple[str, float]]:
    cpo_loss = _method(wheel, "trl/experimental/cpo/cpo_trainer.py", "CPOTrainer", "cpo_loss")
    chosen, rejected = -rng.uniform(5, 15, 8), -rng.uniform(5, 15, 8)
    trainer = types.SimpleNamespace(loss_type="sigmoid", beta=0.2, label_smoothing=0.1, alpha=0.0,
                                    accelerator=_Accelerator())
    losses, *_ = cpo_loss(trainer, torch.tensor(chosen), torch.tensor(rejected))
    ours = lossjax.cpo_loss(chosen, rejected, beta=0.2, label_smoothing=0.1, alpha=0.0)
    return [("cpo_loss (alpha=0)", abs(float(ours) - losses.mean().item()) / losses.mean().item())]


def gkd(wheel: str, rng: np.random.Generator) -> list[tuple[str, float]]:
    jsd = _method(wheel, "trl/experimental/gkd/gkd_trainer.py", "GKDTrainer",
                  "generalized_jsd_loss")
    s, t = rng.normal(0, 2, (2, 5, 9)), rng.normal(0, 2, (2, 5, 9))
    labels = np.array([[3, -100, 1, 0, -100], [-100, 2, 2, 6, 5]])
    rows = []
    for beta, divergence in ((0.0, "forward_kl"), (1.0, "reverse_kl"), (0.5, "jsd"),
                             (0.1, "jsd")):
        theirs = jsd(torch.tensor(s), torch.tensor(t), torch.tensor(labels), beta=beta,
                     temperature=2.0).item()
        ours = lossjax.distillation_loss(s, t, divergence=divergence, beta=max(beta, 0.1),
                                         temperature=2.0, labels=labels) / 4.0
        rows.append((f"distillation_loss divergence={divergence!r} (beta {beta})",
                     abs(float(ours) - theirs) / abs(theirs)))
    return rows


def main(wheel: str) -> None:
    rng = np.random.default_rng(0)
    rows = grpo(wheel, rng) + cpo(wheel, rng) + gkd(wheel, rng)
    print("| lossjax against TRL's own code (float64) | max relative difference |")
    print("|---|---|")
    for name, err in rows:
        print(f"| {name} | {err:.1e} |")


if __name__ == "__main__":
    main(sys.argv[1])
