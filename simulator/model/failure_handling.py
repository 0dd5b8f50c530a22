"""What happens to the requests a failed node held: sent to another replica, or counted as failed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel

from simulator.model.request import Request
from simulator.registry import FAILURE_HANDLING
from simulator.scenario.cluster import FailOrphans, RetryOrphans


class OrphanPolicy(ABC):
    """Decides, per orphaned request, whether it is routed again."""

    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel) -> None:
        self.config = config

    @abstractmethod
    def retries(self, request: Request) -> bool:
        """True: route ``request`` again (its ``retries`` was counted); False: it failed."""


@FAILURE_HANDLING.register
class Retry(OrphanPolicy):
    """Route again, up to ``max_retries`` times per request."""

    Config = RetryOrphans

    def retries(self, request):
        if request.retries < self.config.max_retries:
            request.retries += 1
            return True
        return False


@FAILURE_HANDLING.register
class Fail(OrphanPolicy):
    """Never route again: the request is dropped with reason node_failure."""

    Config = FailOrphans

    def retries(self, request):
        return False
