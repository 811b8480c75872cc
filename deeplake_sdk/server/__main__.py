"""``python -m deeplake_sdk.server``: run the local server (gevent patched first)."""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from deeplake_sdk.server.main import main  # noqa: E402

sys.exit(main())
