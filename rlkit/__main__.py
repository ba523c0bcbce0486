"""`python -m rlkit` is the same as the `rlkit` console script."""

import sys

from rlkit.cli import main

sys.exit(main())
