"""Whether a node is in service: up, failed, or draining for a model update."""

from __future__ import annotations

from collections.abc import Callable


class Lifecycle:
    """A node's availability and the callback a drain waits to make once the node is empty."""

    def __init__(self) -> None:
        self.available = True
        self._on_drained: Callable[[], None] | None = None

    def fail(self) -> None:
        """Down at once; a drain in progress is abandoned."""
        self.available = False
        self._on_drained = None

    def drain(self, on_drained: Callable[[], None]) -> None:
        """Stop taking requests; ``on_drained`` runs when the node reports it is empty."""
        self.available = False
        self._on_drained = on_drained

    def emptied(self) -> None:
        """The node holds no request: a pending drain is complete."""
        if self._on_drained is not None:
            on_drained, self._on_drained = self._on_drained, None
            on_drained()

    def recover(self) -> None:
        self.available = True
