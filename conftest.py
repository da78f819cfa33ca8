"""Doctest set-up for ``pytest --doctest-modules`` over ``lossjax/``.

Docstring examples show what a user gets by default, so they run in float32 (x64 off) even
when the test suite has switched float64 on for its own reference checks.
"""

import jax
import pytest
from _pytest.doctest import DoctestItem

# Training scripts and the command line need the optional extras (scikit-learn, gymnax,
# matplotlib) and have no docstring examples; tests/ imports them where they are tested.
collect_ignore_glob = ["lossjax/examples/*", "lossjax/cli.py"]


@pytest.fixture(autouse=True)
def _doctests_in_float32(request: pytest.FixtureRequest):
    if isinstance(request.node, DoctestItem):
        with jax.enable_x64(False):
            yield
    else:
        yield
