"""Size limits checked before a write is journaled.

The service takes every write in one HTTP request, and a request body has a maximum size (the
local server's is 64 MiB). A file's bytes travel hex-encoded (twice their size) next to their text
copy, so one write of more than about a quarter of the body limit could never be stored: such a
write is refused when it is made, with an error naming the limit, rather than journaled and
refused by the service later (where it would be kept aside as *rejected*).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "Limits"]


@dataclass(frozen=True)
class Limits:
    """Largest single writes the SDK journals.

    Attributes:
        file_bytes: Bytes of one file write, or of one append (default 16 MiB).
        event_bytes: Bytes of the JSON text of one session event (default 4 MiB).
    """

    file_bytes: int = 16 << 20
    event_bytes: int = 4 << 20

    def __post_init__(self) -> None:
        if self.file_bytes < 1 or self.event_bytes < 1:
            raise ValueError("limits must be positive")


#: The limits used unless a filesystem or session log is given others.
DEFAULT_LIMITS = Limits()
