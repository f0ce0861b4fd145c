"""The KV cache kept between calls of the local backend, holding the prompt text before the
screenshot (system prompt, tool schema, task, history).

Each call takes the longest common token prefix of what is kept and its own prompt, crops the
rest away and prefills only what follows; after the call only the text before the image is
kept again. A StaticCache (``static=True``, for CUDA graphs: its tensors keep their addresses)
is reused unless it is too small for the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

STATIC_BUCKET = 1024
"""StaticCache lengths are rounded up to this, to limit reallocations."""


class PrefixCache:
    def __init__(self, config: Any, static: bool) -> None:
        self.config = config
        self.static = static
        self.cache: Any = None
        """The transformers cache the model reads and writes; None until the first call."""
        self.ids: list[int] = []
        """The token ids whose keys and values ``cache`` holds."""

    def reset(self) -> None:
        self.cache = None
        self.ids = []

    def take(self, prefix: Sequence[int], need: int) -> int:
        """Crop the cache to its longest common prefix with ``prefix``; returns that length.
        ``need``: the most tokens this call may hold (prompt + new tokens)."""
        from transformers import DynamicCache, StaticCache

        if self.cache is None or (self.static and self.cache.get_max_length() < need):
            self.ids = []
            if self.static:
                size = -(-need // STATIC_BUCKET) * STATIC_BUCKET
                self.cache = StaticCache(config=self.config, max_cache_len=size)
            else:
                self.cache = DynamicCache(config=self.config)
        common = common_prefix(self.ids, prefix)
        self.cache.crop(common - int(self.cache.get_seq_length()))
        self.ids = list(prefix[:common])
        return common

    def keep(self, prefix: Sequence[int]) -> None:
        """After a call: keep only the keys and values of ``prefix`` for the next call."""
        seen = int(self.cache.get_seq_length())
        keep = min(len(prefix), seen)
        self.cache.crop(keep - seen)
        self.ids = list(prefix[:keep])


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
