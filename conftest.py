"""Test-session set-up: XLA flags that make compiling cheap, and doctests in float32.

Most of the suite's time is XLA compiling hundreds of small programs once each. The flags
in ``tests/_xla.py``, set here before JAX starts, make the CPU backend compile with LLVM at
-O0, without its expensive passes and with its older loop emitters: about 40% less wall
time for the suite. They change how the code is generated, not what it computes (no
fast-math: IEEE semantics as by default), and users who never run the tests never see them.
Multi-device children inherit them; notebook kernels and one long training program get
optimised code back (``tests/_xla.py``). Flags already in ``XLA_FLAGS`` come after ours, so
they win.

Docstring examples show what a user gets by default, so they run in float32 (x64 off) even
when a test has switched float64 on for its own reference checks.
"""

from tests._xla import use_fast_compile_flags

use_fast_compile_flags()

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them once, at start-up)
import pytest  # noqa: E402
from _pytest.doctest import DoctestItem  # noqa: E402

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
