"""The API reference, generated from the namespaces' ``__all__`` when the docs build.

``conf.py`` writes the pages this module renders; ``tests/test_docs.py`` checks the same
rendering, so a public name can neither be missing from the site nor be added without it.
Each name is grouped by the private module that defines it (``lossjax.losses._regression``
-> "Regression"); a module missing from the title maps gets a title made from its name.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any

# (namespace, page title, introduction, {private module suffix: section title}, fallback)
_NAMESPACES = (
    (
        "losses",
        "Losses",
        "Every loss takes ``(predictions, targets, *, <options>, weights=None, where=None, "
        'reduction="mean")``; see :doc:`../conventions`. Each is also ``lossjax.losses.<name>``.',
        {
            "_regression": "Regression",
            "_cross_entropy": "Classification",
            "_margin": "Classification",
            "_sparsemax": "Classification",
            "_divergence": "Divergences and likelihoods",
            "_likelihood": "Divergences and likelihoods",
            "_sequence": "Sequences and language models",
            "_large_vocab": "Sequences and language models",
            "_similarity": "Similarity and metric learning",
            "_metric_learning": "Similarity and metric learning",
            "_segmentation": "Segmentation",
            "_ranking": "Ranking",
            "_reinforcement": "Reinforcement learning",
            "_detection": "Detection",
            "_alignment": "Preference alignment",
            "_distillation": "Distillation",
            "_contrastive": "Contrastive image-text",
            "_moe": "Mixture of experts",
            "_reduce": "Reductions (for writing your own loss)",
        },
        None,
    ),
    (
        "optimizers",
        "Optimizers",
        "Each optimizer is an ``optax.GradientTransformation``: use it with ``optax.chain``, "
        "``optax.apply_updates`` and Flax's ``nnx.Optimizer``. Each is also "
        "``lossjax.optimizers.<name>``.",
        {
            "_transforms": "Transforms",
            "_wrappers": "Wrappers",
            "_averaging": "Wrappers",
            "_clipping": "Transforms",
            "_line_search": "Line search",
            "_lr_find": "Learning-rate finder",
            "_flat": "Flat parameter buffers",
            "_states": "Optimizer states",
        },
        "Optimizers",
    ),
    (
        "schedules",
        "Schedules",
        "Functions ``step -> learning rate``: pass one wherever a ``learning_rate`` is taken. "
        "optax's names work too (``optax.warmup_cosine_decay_schedule`` -> "
        "``lossjax.warmup_cosine_decay_schedule`` or "
        "``lossjax.schedules.warmup_cosine_decay_schedule``, the same function as "
        "``lossjax.schedules.warmup_cosine_decay``).",
        {},
        "Schedules",
    ),
    (
        "regularizers",
        "Regularizers",
        "Penalties to add to a loss, regularizing transforms to chain with an optimizer, and "
        "dropout. Each is also ``lossjax.regularizers.<name>``.",
        {
            "_penalties": "Penalties",
            "_transforms": "Regularizing transforms",
            "_dropout": "Dropout",
        },
        None,
    ),
)

STATES = "Optimizer states"
NOT_STATES = {"_flat"}  # optimizer modules whose classes are not states: their own section
ALIASES = "optax's names (aliases of the schedules above)"


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str  # as listed in the namespace's __all__
    target: str  # the dotted path the page documents, e.g. "lossjax.mse"
    directive: str  # autofunction, autoclass or autodata
    section: str


@dataclasses.dataclass(frozen=True)
class Page:
    namespace: str
    title: str
    intro: str
    sections: dict[str, list[Entry]]


def _section_from_module(module: str) -> str:
    """``lossjax.losses._metric_learning`` -> "Metric learning"."""
    return module.rsplit(".", 1)[-1].strip("_").replace("_", " ").capitalize() or module


def _from_optax(target: str) -> bool:
    """Whether the object documented at ``target`` (``lossjax.X``) is optax's own."""
    module_name, _, name = target.rpartition(".")
    obj = getattr(importlib.import_module(module_name), name)
    return getattr(obj, "__module__", "").startswith("optax")


def _directive(obj: Any) -> str:
    if inspect.isclass(obj):
        return "autoclass"
    return "autofunction" if callable(obj) else "autodata"


def pages() -> list[Page]:
    """One page per namespace, its entries grouped into sections in a stable order."""
    lossjax = importlib.import_module("lossjax")
    result = []
    for namespace, title, intro, titles, fallback in _NAMESPACES:
        module = getattr(lossjax, namespace)
        order = list(dict.fromkeys([fallback, *titles.values()]))
        sections: dict[str, list[Entry]] = {}
        for name in module.__all__:
            obj = getattr(module, name)
            flat = getattr(lossjax, name, None) is obj
            target = f"lossjax.{name}" if flat else f"lossjax.{namespace}.{name}"
            defined_in = getattr(obj, "__module__", None) or module.__name__
            suffix = defined_in.rsplit(".", 1)[-1]
            if namespace == "optimizers" and inspect.isclass(obj) and suffix not in NOT_STATES:
                section = STATES
            elif namespace == "schedules" and getattr(obj, "__name__", name) != name:
                section = ALIASES
            else:
                section = titles.get(suffix) or fallback or _section_from_module(defined_in)
            sections.setdefault(section, []).append(Entry(name, target, _directive(obj), section))
        ranked = sorted(
            sections,
            key=lambda s: (s in (STATES, ALIASES), order.index(s) if s in order else len(order),
                           s),
        )
        result.append(Page(namespace, title, intro, {s: sections[s] for s in ranked}))
    return result


def _underline(text: str, char: str) -> str:
    return f"{text}\n{char * len(text)}\n"


def render(page: Page) -> str:
    """reStructuredText: a summary table per section, then each entry's docstring."""
    lines = [
        _underline(page.title, "="),
        page.intro,
        "",
        ".. currentmodule:: lossjax",
        "",
    ]
    for section, entries in page.sections.items():
        lines += [_underline(section, "-"), ".. autosummary::", ""]
        # autosummary names are relative to the current module, lossjax.
        lines += [f"   ~{entry.target.removeprefix('lossjax.')}" for entry in entries]
        lines.append("")
        for entry in entries:
            lines += [f".. {entry.directive}:: {entry.target}"]
            if entry.directive == "autoclass" and not _from_optax(entry.target):
                # optax's own classes (state layouts shared with optax) document their
                # fields in their docstrings; listing members again would duplicate them
                lines += ["   :members:", "   :exclude-members: count, index"]
            lines.append("")
    return "\n".join(lines)


def render_index(all_pages: list[Page]) -> str:
    lines = [
        _underline("API reference", "="),
        "Every public name, generated from ``lossjax.losses``, ``lossjax.optimizers``, "
        "``lossjax.schedules`` and ``lossjax.regularizers``.",
        "",
        ".. toctree::",
        "   :maxdepth: 2",
        "",
    ]
    lines += [f"   {page.namespace}" for page in all_pages]
    return "\n".join(lines) + "\n"


def write(directory) -> list[str]:
    """Write ``index.rst`` and one page per namespace into ``directory`` (a pathlib.Path);
    files whose text is unchanged are left alone so Sphinx does not re-read them."""
    directory.mkdir(parents=True, exist_ok=True)
    all_pages = pages()
    texts = {"index.rst": render_index(all_pages)}
    texts.update({f"{page.namespace}.rst": render(page) for page in all_pages})
    for filename, text in texts.items():
        path = directory / filename
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return sorted(texts)
