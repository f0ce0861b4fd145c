"""What the local backend feeds the model for a Prompt: the exact chat text, its token ids with
each image's placeholder run located and named by the image's identity, and pixel values only
for the images that must go through the vision tower.

The processor's own ``__call__`` resizes and patches EVERY image of a prompt (about 0.15 s per
1280x800 screenshot on one CPU core), though a prompt that keeps five screenshots has at most
one new one per step. Here the text is expanded the way the processor expands it (each
``<|image_pad|>`` repeated once per visual token of its image, the grid from the image
processor's own ``smart_resize``) and tokenized by the processor's tokenizer; ``pixel_values``
runs the image processor later, on the images whose features are not cached.
tests/test_local_prefix.py checks both against the processor's ``__call__``.

An image's identity is a digest of its pixels (with its mode and size) and its grid: equal
screenshots sent as different objects are the same image, and two screenshots of one size (the
same placeholder tokens) are different images when one pixel differs. The digest is memoized
per image object, so a prompt's images are treated as values: nothing changes an image in place
after it was sent (PIL's operations return new images; the loop never draws on a screenshot).
"""

from __future__ import annotations

import functools
import hashlib
import weakref
from dataclasses import dataclass
from typing import Any

from pixelpilot.agent.geometry import PixelBudget
from pixelpilot.vlm.base import Prompt

Grid = tuple[int, int, int]
ImageKey = tuple[bytes, Grid]
"""(digest of the pixels, (t, h, w) patch grid): what the vision tower's output depends on."""


@dataclass(frozen=True)
class ImageSpan:
    """Where one image's placeholder tokens sit in the prompt's token ids: ``start`` (its first
    ``<|image_pad|>``) to ``end`` (one past its last); ``index``: which of the prompt's
    images; ``key``: its identity."""

    start: int
    end: int
    index: int
    key: ImageKey


@dataclass
class Encoded:
    """A prompt as the model takes it: ``input_ids`` and ``mm_token_type_ids`` (1, n) tensors,
    ``grid`` ((images, 3) tensor, None without images), the prompt's ``images`` and their
    ``spans`` in order."""

    text: str
    input_ids: Any
    mm_token_type_ids: Any
    grid: Any
    images: list[Any]
    spans: tuple[ImageSpan, ...]

    @property
    def ids(self) -> list[int]:
        return list(self.input_ids[0].tolist())


def chat_text(processor: Any, prompt: Prompt) -> str:
    """The exact text the model sees for ``prompt``: its messages through the checkpoint's chat
    template, each image as its vision placeholder; a final assistant message left open when
    the model continues it (``continue_final``), else a new assistant turn opened."""
    messages = [
        {
            "role": m.role,
            "content": [
                {"type": "image"} if p["type"] == "image" else {"type": "text", "text": p["text"]}
                for p in m.content
            ],
        }
        for m in prompt.messages
    ]
    return str(
        processor.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=not prompt.continue_final,
            continue_final_message=prompt.continue_final,
        )
    )


def set_pixels(processor: Any, budget: PixelBudget) -> None:
    """Make ``processor`` resize images into ``budget`` (min/max pixels of the resized image)."""
    from transformers.image_utils import SizeDict

    ip = processor.image_processor
    ip.size = SizeDict(shortest_edge=budget.min_pixels, longest_edge=budget.max_pixels)
    for attr in ("min_pixels", "max_pixels"):  # older processors read these directly
        if hasattr(ip, attr):
            setattr(ip, attr, getattr(budget, attr))


def image_grid(processor: Any, width: int, height: int) -> Grid:
    """The (t, h, w) patch grid the image processor gives a width x height image."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    ip = processor.image_processor
    h, w = smart_resize(
        height,
        width,
        factor=ip.patch_size * ip.merge_size,
        min_pixels=ip.size["shortest_edge"],
        max_pixels=ip.size["longest_edge"],
    )
    return (1, h // ip.patch_size, w // ip.patch_size)


def visual_tokens(processor: Any, grid: Grid) -> int:
    """How many ``<|image_pad|>`` tokens (vision-tower outputs) an image of ``grid`` takes."""
    t, h, w = grid
    return t * h * w // processor.image_processor.merge_size**2


def encode(processor: Any, prompt: Prompt) -> Encoded:
    """``prompt`` as token ids with its images' spans; no pixel is processed here."""
    import torch

    text = chat_text(processor, prompt)
    images = prompt.images
    pad = processor.image_token
    pieces = text.split(pad)
    if len(pieces) != len(images) + 1:
        raise ValueError(
            f"the chat text holds {len(pieces) - 1} image placeholders for {len(images)} images"
        )
    grids = [image_grid(processor, *im.size) for im in images]
    counts = [visual_tokens(processor, g) for g in grids]
    expanded = pieces[0] + "".join(
        pad * n + rest for n, rest in zip(counts, pieces[1:], strict=True)
    )
    ids = processor.tokenizer([expanded], return_tensors="pt")["input_ids"]
    pad_id = int(processor.image_token_id)
    is_pad = ids[0] == pad_id
    starts = [int(i) for i in torch.nonzero(is_pad[1:] & ~is_pad[:-1]).flatten() + 1]
    if is_pad.numel() and bool(is_pad[0]):
        starts.insert(0, 0)
    if len(starts) != len(images):
        raise ValueError(f"found {len(starts)} image placeholder runs for {len(images)} images")
    spans = tuple(
        ImageSpan(s, s + n, i, (digest(im), g))
        for i, (s, n, im, g) in enumerate(zip(starts, counts, images, grids, strict=True))
    )
    return Encoded(
        text=text,
        input_ids=ids,
        mm_token_type_ids=is_pad.to(torch.long).unsqueeze(0),
        grid=torch.tensor(grids, dtype=torch.long) if grids else None,
        images=images,
        spans=spans,
    )


def rope_positions(model: Any, enc: Encoded) -> tuple[Any, int]:
    """M-RoPE positions (3, 1, n) of the whole prompt by the model's own ``get_rope_index``
    (a position after an image depends on every earlier image's grid), and the delta of the
    tokens after it (text position = index + delta)."""
    import torch

    if enc.grid is None:
        n = enc.input_ids.shape[1]
        return torch.arange(n).view(1, 1, -1).expand(3, 1, -1), 0
    pos, deltas = model.model.get_rope_index(
        enc.input_ids, mm_token_type_ids=enc.mm_token_type_ids, image_grid_thw=enc.grid
    )
    return pos, int(deltas.reshape(-1)[0])


def pixel_values(processor: Any, image: Any, grid: Grid) -> Any:
    """The image processor's patches of one image (as in the processor's ``__call__``)."""
    out = processor.image_processor(images=[image], return_tensors="pt")
    got = tuple(int(v) for v in out["image_grid_thw"][0].tolist())
    if got != grid:  # a processor that resizes differently from smart_resize
        raise ValueError(f"the image processor made a {got} grid where {grid} was expected")
    return out["pixel_values"]


_DIGESTS: dict[int, tuple[weakref.ref[Any], bytes]] = {}


def digest(image: Any) -> bytes:
    """A digest of ``image``'s mode, size and pixels, computed once per image object."""
    key = id(image)
    hit = _DIGESTS.get(key)
    if hit is not None and hit[0]() is image:
        return hit[1]
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"{image.mode} {image.size}".encode())
    h.update(image.tobytes())
    value = h.digest()
    _DIGESTS[key] = (weakref.ref(image, functools.partial(_forget, key)), value)
    return value


def _forget(key: int, ref: weakref.ref[Any]) -> None:
    """Drop a collected image's digest (unless a new image has its id already)."""
    hit = _DIGESTS.get(key)
    if hit is not None and hit[0] is ref:
        del _DIGESTS[key]
