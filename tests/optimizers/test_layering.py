"""The optimizer wing's layering rule, read from the source: a family module imports the
shared machinery, the public basic transforms, the shared mask module and the public
packages of lossjax, and never another family or a private name elsewhere."""

import ast
import pathlib

import pytest

import lossjax.optimizers

PACKAGE = pathlib.Path(lossjax.optimizers.__file__).parent
# _kronecker: the Kronecker-factor machinery SOAP, Shampoo and Kron share (axis merging,
# per-axis Gram matrices and products, batched eigh/QR by shape); no optimizer arithmetic
SHARED = {"_machinery", "_transforms", "_kronecker"}
# what a family module may import from lossjax, by module: None means any name
ALLOWED = {
    "lossjax._validation": None,
    "lossjax._held": None,
    "lossjax._mask": None,
    "lossjax.optimizers._machinery": None,
    "lossjax.optimizers._kronecker": None,
    "lossjax.regularizers": None,
    "lossjax.schedules": None,
}
FAMILIES = sorted(p.stem for p in PACKAGE.glob("_*.py") if p.stem not in SHARED | {"__init__"})
# Tools that drive whole optimizers, not families: they may also use the public optimizer
# package, imported inside a function (at module level the import would be circular).
TOOLS = {"_lr_find": "lossjax.optimizers"}


def lossjax_imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lossjax"):
            yield node.module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            yield from ((alias.name, []) for alias in node.names
                        if alias.name.startswith("lossjax"))


@pytest.mark.parametrize("family", FAMILIES)
def test_family_imports_only_the_shared_layers(family):
    for module, names in lossjax_imports(PACKAGE / f"{family}.py"):
        if module == TOOLS.get(family):
            continue
        if module == "lossjax.optimizers._transforms":
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{family} imports private {private} from _transforms"
            continue
        assert module in ALLOWED, f"{family} imports {module}: families import only " \
            "_machinery, the public basic transforms, lossjax._mask and public packages"


@pytest.mark.parametrize("shared", sorted(SHARED))
def test_shared_layers_import_no_family(shared):
    for module, _ in lossjax_imports(PACKAGE / f"{shared}.py"):
        assert module in ALLOWED, f"{shared} imports {module}"


def test_the_rule_sees_every_family():
    assert {"_adam_family", "_orthogonal", "_wrappers", "_sign"} <= set(FAMILIES)


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_tools_import_the_public_optimizers_inside_functions(tool):
    tree = ast.parse((PACKAGE / f"{tool}.py").read_text())
    top_level = {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert TOOLS[tool] not in top_level
