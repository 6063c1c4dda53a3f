"""``python -m webhook``: the same as the ``routewarden`` command."""

import sys

from .cli import main

sys.exit(main())
