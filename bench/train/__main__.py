"""``python -m bench.train``: see :func:`bench.train.cli.main`."""

import sys

from bench.train.cli import main

sys.exit(main())
