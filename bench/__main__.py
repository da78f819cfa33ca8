"""``python -m bench``: run every benchmark (see :mod:`bench.run`)."""

import sys

from bench.run import main

sys.exit(main())
