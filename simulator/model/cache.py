"""Result caches in front of the model: which computed results are kept, and for how long.

A cache holds at most ``capacity_entries`` keys. The caller asks ``lookup(key, now_ms)`` once
per request (True: serve the stored result) and, on a miss, calls ``insert(key, now_ms)`` when
the model has computed the result; calls come in time order. An ``insert`` of a key that is
already cached (two misses for one key in flight at once) stores the fresh result: LRU makes it
the most recent, LFU counts one more use, TTL starts a new lifetime. Each call is a few dict
operations: this runs once per simulated request.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections import OrderedDict
from itertools import count
from typing import ClassVar

from pydantic import BaseModel

from simulator.registry import CACHE_POLICIES
from simulator.scenario.cluster import LfuCache, LruCache, TtlCache


class ResultCache(ABC):
    """A bounded key set with ``hits``, ``misses`` (per lookup) and ``evictions`` (for room) counted."""

    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel) -> None:
        self.config = config
        self.capacity = config.capacity_entries
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @abstractmethod
    def lookup(self, key: int, now_ms: float) -> bool:
        """Whether ``key`` is cached (a hit), counting it and refreshing the key as the policy says."""

    @abstractmethod
    def insert(self, key: int, now_ms: float) -> None:
        """Cache ``key``'s freshly computed result, evicting per the policy when full."""

    @abstractmethod
    def __len__(self) -> int: ...


@CACHE_POLICIES.register
class LeastRecentlyUsed(ResultCache):
    """LRU: a full cache evicts the key whose last use is oldest."""

    Config = LruCache

    def __init__(self, config):
        super().__init__(config)
        self._entries: OrderedDict[int, None] = OrderedDict()  # least recently used first

    def lookup(self, key, now_ms):
        entries = self._entries
        if key in entries:
            entries.move_to_end(key)
            self.hits += 1
            return True
        self.misses += 1
        return False

    def insert(self, key, now_ms):
        entries = self._entries
        if key in entries:
            entries.move_to_end(key)
            return
        if len(entries) >= self.capacity:
            entries.popitem(last=False)
            self.evictions += 1
        entries[key] = None

    def __len__(self):
        return len(self._entries)


@CACHE_POLICIES.register
class LeastFrequentlyUsed(ResultCache):
    """In-cache LFU: a full cache evicts the key used least often since it entered; ties: least recent.

    Counts are kept only for cached keys (an evicted key starts again at 1), so memory stays
    O(capacity); long-resident keys build up counts that newcomers rarely reach, so the content
    settles early (less adaptive than LRU, and below perfect LFU's top-C hit ratio).
    A hit only updates the key's [uses, last use]; the eviction heap holds one (uses, last use,
    key) entry per key, possibly stale, refreshed lazily when it reaches the top:
    O(1) per hit, O(log capacity) amortized per eviction.
    """

    Config = LfuCache

    def __init__(self, config):
        super().__init__(config)
        self._uses: dict[int, list[int]] = {}  # key → [uses, tick of last use]
        self._heap: list[tuple[int, int, int]] = []  # (uses, tick, key) as of the entry's last push
        self._ticks = count()

    def lookup(self, key, now_ms):
        use = self._uses.get(key)
        if use is None:
            self.misses += 1
            return False
        self.hits += 1
        use[0] += 1
        use[1] = next(self._ticks)
        return True

    def insert(self, key, now_ms):
        uses, heap = self._uses, self._heap
        use = uses.get(key)
        if use is not None:
            use[0] += 1
            use[1] = next(self._ticks)
            return
        if len(uses) >= self.capacity:
            while True:  # a stale top only underestimates its key, so a fresh top is the true minimum
                stored_uses, stored_tick, victim = heap[0]
                use = uses[victim]
                if use[0] == stored_uses and use[1] == stored_tick:
                    break
                heapq.heapreplace(heap, (use[0], use[1], victim))
            heapq.heappop(heap)
            del uses[victim]
            self.evictions += 1
        tick = next(self._ticks)
        uses[key] = [1, tick]
        heapq.heappush(heap, (1, tick, key))

    def __len__(self):
        return len(self._uses)


@CACHE_POLICIES.register
class TimeToLive(ResultCache):
    """TTL: a result is served for ``ttl_ms`` after its insertion (hits do not extend it), then dropped.

    Alive while ``now_ms < inserted_ms + ttl_ms``. Every entry has the same lifetime, so
    insertion order is expiry order: a full cache first drops expired entries (counted in
    ``expirations``), then evicts the entry closest to expiry (the oldest).
    """

    Config = TtlCache

    def __init__(self, config):
        super().__init__(config)
        self.ttl_ms = config.ttl_ms
        self.expirations = 0
        self._expiries: OrderedDict[int, float] = OrderedDict()  # key → expiry time, earliest first

    def lookup(self, key, now_ms):
        expiry_ms = self._expiries.get(key)
        if expiry_ms is None:
            self.misses += 1
            return False
        if now_ms >= expiry_ms:
            del self._expiries[key]
            self.expirations += 1
            self.misses += 1
            return False
        self.hits += 1
        return True

    def insert(self, key, now_ms):
        expiries = self._expiries
        if key in expiries:
            del expiries[key]
        elif len(expiries) >= self.capacity:
            while expiries and next(iter(expiries.values())) <= now_ms:
                expiries.popitem(last=False)
                self.expirations += 1
            if len(expiries) >= self.capacity:
                expiries.popitem(last=False)
                self.evictions += 1
        expiries[key] = now_ms + self.ttl_ms

    def __len__(self):
        return len(self._expiries)
