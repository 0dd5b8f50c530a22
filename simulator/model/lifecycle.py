"""Whether a node is in service: up, or held out by failures and drains, which may overlap.

Every reason to be out of service is a hold: a failure until its repair, a rolling update from
its drain until its reload is done. The node is available only when no hold remains, so a
failure during an update's drain neither stops the update (the failure empties the node, which
completes the drain) nor brings the node back before the update's reload is over.
"""

from __future__ import annotations

from collections.abc import Callable


class Lifecycle:
    """A node's holds, and the callback a drain waits to make once the node is empty."""

    def __init__(self) -> None:
        self.holds = 0
        self.available = True
        self._on_drained: Callable[[], None] | None = None

    def fail(self) -> None:
        """Down at once (the node hands back what it holds, which completes a drain in progress)."""
        self.holds += 1
        self.available = False

    def drain(self, on_drained: Callable[[], None]) -> None:
        """Stop taking requests; ``on_drained`` runs when the node reports it is empty."""
        self.holds += 1
        self.available = False
        self._on_drained = on_drained

    def emptied(self) -> None:
        """The node holds no request: a pending drain is complete."""
        if self._on_drained is not None:
            on_drained, self._on_drained = self._on_drained, None
            on_drained()

    def release(self) -> None:
        """One hold is over; back in service when none remains."""
        if self.holds == 0:
            raise RuntimeError("a node was recovered more often than it was taken down")
        self.holds -= 1
        self.available = self.holds == 0
