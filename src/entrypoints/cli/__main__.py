"""`python -m entrypoints.cli ...`: the `portico` command."""

import sys

from entrypoints.cli import main

sys.exit(main())
