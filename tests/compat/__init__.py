"""optax's and rlax's own test files, run with lossjax's functions in place of theirs.

``table.py`` lists, literally, which optax/rlax name is replaced by which lossjax name, which
installed test files are run, and which of their test cases are deliberate, documented
differences (each with its reason). ``plugin.py`` is the pytest plugin that installs the
substitutions inside a child pytest; ``run.py`` starts those children and reads back one
outcome per test case. ``test_compat.py`` runs the fast files in the suite; the full run is
``python -m bench.compat``.
"""
