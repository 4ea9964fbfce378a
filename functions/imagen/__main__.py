"""python -m imagen: the imagen command."""

import sys

from .cli import main

sys.exit(main())
