"""psgd_jax (the reference PSGD Kron in JAX, from the package index) for the tests.

psgd_jax 0.2.9 imports ``optax._src.clipping``, which optax 0.2.8 no longer has and
which its Kron code never uses; an empty stand-in module is registered under that name
(only when it is missing) before the import.
"""

import sys
import types

import optax  # noqa: F401  (optax._src must exist before the stand-in is added)

sys.modules.setdefault("optax._src.clipping", types.ModuleType("optax._src.clipping"))

from psgd_jax.kron import kron as psgd_kron  # noqa: E402

__all__ = ["psgd_kron"]
