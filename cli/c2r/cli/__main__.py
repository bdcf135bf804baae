"""`python -m c2r.cli ...` runs the `c2r` command (how a daemon is spawned without the script)."""

import sys

from c2r.cli.main import main

sys.exit(main())
