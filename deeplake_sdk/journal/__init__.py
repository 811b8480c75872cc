"""The local write-ahead journal: every write is kept on disk until the service confirmed it.

:class:`JournalStore` is the durable store (see :mod:`deeplake_sdk.journal.store`); this
package exports the store's names.
"""

from deeplake_sdk.journal.store import *  # noqa: F403
from deeplake_sdk.journal.store import __all__ as __all__
