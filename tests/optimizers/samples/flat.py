"""Flat parameter buffers: helpers around the optimizers, not transformations."""

EXEMPT = {
    "flatten_params": "packs a parameter tree into flat buffers (a layout helper, not a "
                      "transformation); tested in tests/optimizers/test_flat.py",
    "check_elementwise": "checks that a transformation may run on flat buffers; tested in "
                         "tests/optimizers/test_flat.py",
}

ENTRIES = []
