"""python -m imagen_cli: the imagen command."""

import sys

from .app import main

sys.exit(main())
