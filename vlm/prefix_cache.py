"""The KV cache kept between calls of the local backend: everything the last call fed the model
(its whole prompt, screenshots included, and the answer tokens it ran).

Each call keeps the longest common prefix of what is cached and its own prompt where both the
token ids AND the images agree: an image's placeholder tokens are the same for any two images
of one size, so the prefix also ends at the first image whose identity (``inputs.ImageKey``:
pixels and grid) differs from the cached one at that place, and never inside an image. The
rest is cropped away and only what follows is prefilled. Positions stay exact: the caller
computes M-RoPE positions over the whole prompt, and equal tokens and images before a place
give equal positions there.

A StaticCache (``static=True``, for CUDA graphs: its tensors keep their addresses) is reused
unless it is too small for the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pixelpilot.vlm.inputs import ImageSpan

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
        self.spans: tuple[ImageSpan, ...] = ()
        """The images among ``ids``."""

    def reset(self) -> None:
        self.cache = None
        self.ids = []
        self.spans = ()

    def take(self, ids: Sequence[int], spans: Sequence[ImageSpan], need: int, limit: int) -> int:
        """Crop the cache to the longest prefix it shares with ``ids`` (whose images are
        ``spans``), at most ``limit`` tokens; returns its length. ``need``: the most tokens
        this call may hold (prompt + new tokens)."""
        from transformers import DynamicCache, StaticCache

        if self.cache is None or (self.static and self.cache.get_max_length() < need):
            self.ids, self.spans = [], ()
            if self.static:
                size = -(-need // STATIC_BUCKET) * STATIC_BUCKET
                self.cache = StaticCache(config=self.config, max_cache_len=size)
            else:
                self.cache = DynamicCache(config=self.config)
        common = shared_prefix(self.ids, self.spans, ids, spans, limit)
        self.cache.crop(common - int(self.cache.get_seq_length()))
        self.ids = list(ids[:common])
        self.spans = tuple(s for s in spans if s.end <= common)
        return common

    def keep(self, ids: Sequence[int], spans: Sequence[ImageSpan]) -> None:
        """After a call: ``ids`` (with images ``spans``) are what the cache holds now; the
        cache is cropped to them if it holds more."""
        seen = int(self.cache.get_seq_length())
        keep = min(len(ids), seen)
        self.cache.crop(keep - seen)
        self.ids = list(ids[:keep])
        self.spans = tuple(s for s in spans if s.end <= keep)


def shared_prefix(
    a: Sequence[int],
    a_spans: Sequence[ImageSpan],
    b: Sequence[int],
    b_spans: Sequence[ImageSpan],
    limit: int | None = None,
) -> int:
    """Length of the longest common prefix of ``a`` and ``b`` (at most ``limit``) over which
    the images agree too, ending at an image's edge."""
    common = common_prefix(a, b)
    if limit is not None:
        common = min(common, limit)
    a_at = {s.start: s for s in a_spans}
    b_at = {s.start: s for s in b_spans}
    for start in sorted(set(a_at) | set(b_at)):  # the first image that differs ends it
        if start >= common:
            break
        x, y = a_at.get(start), b_at.get(start)
        if x is None or y is None or x.key != y.key or x.end != y.end:
            return start
    for span in (*a_spans, *b_spans):  # never a part of an image
        if span.start < common < span.end:
            common = span.start
    return common


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
