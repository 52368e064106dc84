"""`python -m blat_core.app.cli`."""

import sys

from blat_core.app.cli import main

sys.exit(main())
