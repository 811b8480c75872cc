"""``python -m deeplake_sdk.server``: run the local server (gevent patched first).

Python imports the ``deeplake_sdk`` package before this module, and with it the client's
``requests``/``urllib3`` (which import ``ssl``); gevent then warns that those were imported
before patching. The server never uses them (it imports its own modules, ``ssl`` for
``--tls-cert`` included, after the patch), so that warning is not shown.
"""

import warnings

from gevent import monkey

warnings.filterwarnings("ignore", category=monkey.MonkeyPatchWarning)
monkey.patch_all()

import sys  # noqa: E402

from deeplake_sdk.server.main import main  # noqa: E402

sys.exit(main())
