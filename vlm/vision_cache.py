"""The vision tower's output per screenshot, kept across calls of the local backend.

Families send several screenshots per prompt (UI-TARS keeps the last five, Qwen-Agent every
step's), so an earlier screenshot comes back in the next prompt. When the prompt-prefix KV
cache covers it, nothing about it is computed again; when it does not (the UI-TARS window
slid, a re-ask changed text before it), its features come from here instead of the ViT. Keys
are image identities (``inputs.ImageKey``: pixel digest and grid); the ``size`` most recently
used images are kept (0: none).

Each image goes through the image processor and the vision tower alone, never batched with
others: its features are then the same numbers whether they were cached, computed with other
images missing, or computed fresh, so reuse cannot change an answer.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from pixelpilot.vlm.inputs import Encoded, ImageKey, ImageSpan, pixel_values


class VisionCache:
    def __init__(self, model: Any, processor: Any, size: int) -> None:
        self.model, self.processor, self.size = model, processor, size
        self._kept: OrderedDict[ImageKey, Any] = OrderedDict()
        self.computed = 0
        """Images the last ``features`` call ran through the vision tower."""

    def __len__(self) -> int:
        return len(self._kept)

    def clear(self) -> None:
        self._kept.clear()

    def features(
        self,
        enc: Encoded,
        spans: Sequence[ImageSpan],
        timings: dict[str, float],
        sync: Callable[[], None],
    ) -> Any:
        """The vision tower's output for the images of ``spans``, in order, as the model's
        ``mm_encoder_outputs["image"]``; seconds spent go to ``timings`` ("preprocess" for the
        image processor, "vision" for the tower)."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        self.computed = 0
        out = []
        for span in spans:
            feats = self._kept.get(span.key)
            if feats is None:
                feats = self._compute(enc.images[span.index], span.key[1], timings, sync)
                self.computed += 1
                if self.size > 0:
                    self._kept[span.key] = feats
            else:
                self._kept.move_to_end(span.key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
            out.append(feats)
        # the model concatenates ``pooler_output`` per image (what get_image_features returns)
        return BaseModelOutputWithPooling(pooler_output=tuple(out))  # type: ignore[arg-type]

    def _compute(
        self,
        image: Any,
        grid: tuple[int, int, int],
        timings: dict[str, float],
        sync: Callable[[], None],
    ) -> Any:
        import torch

        t0 = time.perf_counter()
        pixels = pixel_values(self.processor, image, grid)
        t1 = time.perf_counter()
        timings["preprocess"] = timings.get("preprocess", 0.0) + (t1 - t0)
        device = self.model.device
        vision = self.model.model.get_image_features(
            pixels.to(device, self.model.dtype),
            torch.tensor([grid], device=device),
            return_dict=True,
        )
        sync()
        timings["vision"] = timings.get("vision", 0.0) + (time.perf_counter() - t1)
        return vision.pooler_output[0]
