"""`python -m bot …`: the command line, the outermost edge (so it may reach into handlers/)."""

import sys

from handlers.cli import main

sys.exit(main())
