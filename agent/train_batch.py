"""Training examples as the model takes them: token ids, labels, pixels, batches.

The prompt's ids are ``vlm.inputs.encode(processor, prompt)``, what the local backend feeds the
model at inference; the answer's are the tokenizer's ids of the answer text followed by
``<|im_end|>``, the token the chat template closes an assistant turn with and the local backend
stops on (``LocalModel.stop_ids``), so the model learns to end where inference ends a call.
Labels are -100 over the prompt. Pixels come from the image processor with the budget set on the
processor (``vlm.inputs.set_pixels``, as at inference), one image at a time
(``vlm.inputs.pixel_values``), when a batch is made: a dataset holds ids and screenshot paths,
not patches.

A batch is right-padded: ``input_ids``, ``attention_mask``, ``labels``, ``mm_token_type_ids``
(1 on image placeholders; the model's ``get_rope_index`` reads them to place M-RoPE positions,
padding left out by the attention mask), ``pixel_values`` and ``image_grid_thw`` of every image
of the batch in order, and ``metas``: per example, its meta with ``image_spans`` (the
placeholder runs in its ids) and ``prompt_tokens``, for an extra loss; the trainer takes
``metas`` out before the forward pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelpilot.agent.errors import UserError
from pixelpilot.agent.train_data import Example
from pixelpilot.vlm.inputs import Grid, encode, pixel_values

END_OF_TURN = "<|im_end|>"
IGNORE = -100
"""The label of a token the loss leaves out (the prompt, padding)."""


@dataclass
class Features:
    """One example as token ids: ``input_ids`` (prompt + answer + end of turn), ``labels`` (-100
    over the prompt), ``prompt_tokens``, each image's ``grid`` and placeholder ``spans`` (start,
    end) in the ids, the screenshot files (``shots``), the example's ``meta``."""

    input_ids: list[int]
    labels: list[int]
    prompt_tokens: int
    grids: list[Grid]
    spans: list[tuple[int, int]]
    shots: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """A dataset row (JSON where Arrow would need one schema for every row)."""
        return {
            "input_ids": self.input_ids,
            "labels": self.labels,
            "extra": json.dumps(
                {
                    "prompt_tokens": self.prompt_tokens,
                    "grids": self.grids,
                    "spans": self.spans,
                    "shots": self.shots,
                    "meta": self.meta,
                }  # fmt: skip
            ),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Features:
        extra = json.loads(row["extra"])
        return cls(
            input_ids=list(row["input_ids"]),
            labels=list(row["labels"]),
            prompt_tokens=int(extra["prompt_tokens"]),
            grids=[tuple(g) for g in extra["grids"]],  # type: ignore[misc]
            spans=[(int(a), int(b)) for a, b in extra["spans"]],
            shots=list(extra["shots"]),
            meta=dict(extra["meta"]),
        )


def end_of_turn_id(processor: Any) -> int:
    """The id of ``<|im_end|>`` in the processor's tokenizer (ConfigError-free: every Qwen2-VL
    tokenizer has it; a tokenizer without it is a UserError)."""
    i = processor.tokenizer.convert_tokens_to_ids(END_OF_TURN)
    if not isinstance(i, int) or i < 0 or i == processor.tokenizer.unk_token_id:
        raise UserError(f"the tokenizer has no {END_OF_TURN} token: not a Qwen2-VL chat model")
    return i


def encode_example(processor: Any, example: Example) -> Features:
    """``example`` as token ids and labels (see the module docstring); no pixel is processed."""
    enc = encode(processor, example.prompt)
    answer = processor.tokenizer(example.answer, add_special_tokens=False)["input_ids"]
    ids = enc.ids + list(answer) + [end_of_turn_id(processor)]
    n = len(enc.ids)
    return Features(
        input_ids=ids,
        labels=[IGNORE] * n + ids[n:],
        prompt_tokens=n,
        grids=[s.key[1] for s in enc.spans],
        spans=[(s.start, s.end) for s in enc.spans],
        shots=[str(p) for p in example.shots],
        meta=example.meta,
    )


def example_tensors(processor: Any, features: Features) -> dict[str, Any]:
    """One example's model inputs as a batch of one (what ``Collator`` makes of it alone)."""
    return Collator(processor)([features.row()])


class Collator:
    """Rows of ``Features.row()`` -> one right-padded batch (see the module docstring)."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        tok = processor.tokenizer
        pad = tok.pad_token_id
        self.pad_id = int(pad if pad is not None else end_of_turn_id(processor))
        self.image_id = int(processor.image_token_id)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        feats = [Features.from_row(r) for r in rows]
        n = max(len(f.input_ids) for f in feats)
        b = len(feats)
        input_ids = torch.full((b, n), self.pad_id, dtype=torch.long)
        labels = torch.full((b, n), IGNORE, dtype=torch.long)
        attention = torch.zeros((b, n), dtype=torch.long)
        pixels: list[Any] = []
        grids: list[Grid] = []
        metas = []
        for i, f in enumerate(feats):
            k = len(f.input_ids)
            input_ids[i, :k] = torch.tensor(f.input_ids)
            labels[i, :k] = torch.tensor(f.labels)
            attention[i, :k] = 1
            for shot, grid in zip(f.shots, f.grids, strict=True):
                pixels.append(pixel_values(self.processor, _load(shot), grid))
                grids.append(grid)
            metas.append({**f.meta, "image_spans": f.spans, "prompt_tokens": f.prompt_tokens})
        batch: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": attention,
            "labels": labels,
            "mm_token_type_ids": ((input_ids == self.image_id) & (attention == 1)).long(),
            "metas": metas,
        }
        if pixels:
            batch["pixel_values"] = torch.cat(pixels, dim=0)
            batch["image_grid_thw"] = torch.tensor(grids, dtype=torch.long)
        return batch


def _load(path: str) -> Any:
    from PIL import Image

    try:
        with Image.open(Path(path)) as im:
            return im.convert("RGB")
    except OSError:
        raise UserError(
            f"cannot read the screenshot {path}: was it moved since training began?"
        ) from None
