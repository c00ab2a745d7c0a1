"""``python -m scratchae`` runs the ``scratchae`` command."""

import sys

from scratchae.cli import main

sys.exit(main())
