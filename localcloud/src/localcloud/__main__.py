"""``python -m localcloud`` is the ``localcloud`` command."""

import sys

from localcloud.cli import main

sys.exit(main())
