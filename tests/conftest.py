"""Shared test set-up. Tests run in float32, the default users get; a test that needs
float64 (a NumPy float64 reference at tight tolerance, finite-difference gradients) asks
for it with the ``x64`` fixture, or ``with jax.enable_x64(True):`` around its code."""

import jax
import pytest


@pytest.fixture
def x64():
    """Enable float64 for the duration of one test."""
    with jax.enable_x64(True):
        yield
