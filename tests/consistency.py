"""Consistency policies the read-lag tests and their worker processes share."""

from __future__ import annotations

from deeplake_sdk.journal import Consistency

#: A window learnt from one write (0.2 s when writes show at once), polled every 20-50 ms.
SHORT_WINDOW = Consistency(
    window=5.0, min_window=0.2, lag_factor=2.0, min_samples=1, first_poll=0.02, max_poll=0.05
)
