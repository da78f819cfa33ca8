"""Shared test set-up: float64 is enabled so NumPy float64 references and finite-difference
gradient checks can run in double precision. Tests that check float32/half behaviour build
their arrays with an explicit dtype."""

import jax

jax.config.update("jax_enable_x64", True)
