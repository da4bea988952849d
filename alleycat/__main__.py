"""``python -m alleycat``."""

import sys

from alleycat.cli import main

sys.exit(main())
