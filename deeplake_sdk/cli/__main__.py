"""``python -m deeplake_sdk.cli``."""

import sys

from deeplake_sdk.cli import main

sys.exit(main())
