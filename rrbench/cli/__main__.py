"""``python -m rrbench.cli``: the same as the ``rrbench`` command."""

import sys

from rrbench.cli.main import main

sys.exit(main())
