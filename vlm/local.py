"""The local transformers backend: any Qwen2-VL-architecture checkpoint, our own decode loop.

Loading is the standard one (``AutoProcessor`` / ``AutoModelForImageTextToText``, local files
only: a missing checkpoint is a one-line ConfigError, never a download or a hang). The pixel
budget is always set on the processor (default: the hub checkpoints' 3136..12845056, not the bare
processor's 1280*28*28), so a screenshot goes in at full resolution unless the user sets one.

Decoding is a plain loop over ``model(...)`` instead of ``generate`` because it needs three things
``generate`` does not give together:
- grammar constraints (``prompt.grammar``, through ``constrained.GrammarConstraint``);
- grammar-forced tokens (markers, JSON keys) fed in ONE forward pass with the sampled token before
  them, instead of one decode step each;
- a KV cache of the text before the screenshot (system prompt, tool schema, task, history) kept
  across steps: each call reuses the longest common token prefix and only runs the rest.
The backend reads only the Prompt: its ``sampling`` (the family's decoding settings) are the
defaults under the constructor's explicit options, ``continue_final`` renders the last
(assistant) message open for the model to continue, and ``stop`` strings end the answer.
M-RoPE positions are computed once per call by the model's own ``get_rope_index`` and passed
explicitly; ``model.model.rope_deltas`` (state that survives between calls) is reset each call.
With ``compile=True`` the cache is a StaticCache and, on CUDA, single-token steps run through
``torch.compile`` (CUDA graphs); prefill and multi-token forced chunks stay eager.

On CUDA, attention runs on flash / memory-efficient SDPA, not cuDNN's: cuDNN builds a new
graph for each new key length, which a decode with a growing cache hits on every pass
(measured on an H200: docs/models.md). ``cudnn_attention=True`` allows it again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pixelpilot.agent.errors import ConfigError
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget
from pixelpilot.vlm.base import MAX_NEW_TOKENS, Generation, Prompt, Sampling, VisionModel
from pixelpilot.vlm.checkpoint import load_checkpoint, torch_dtype
from pixelpilot.vlm.prefix_cache import PrefixCache

ForcedMode = Literal["batch", "step", "off"]
"""How grammar-forced tokens are fed: all in one forward pass with the token before them
("batch"), one forward pass each ("step": same tokens, same text, for comparison), or not used
at all, every token sampled under the mask ("off")."""


@dataclass
class DecodeStats:
    """What the last ``generate`` did, beyond Generation's fields (bench and tests read it)."""

    reused_tokens: int = 0  # prompt tokens whose KV came from the previous call
    prefilled_tokens: int = 0  # prompt tokens run in the prefill forward pass
    forward_passes: int = 0  # decode forward passes after the prefill
    sampled_tokens: int = 0  # tokens chosen from logits
    forced_tokens: int = 0  # tokens the grammar forced
    mask_s: float = 0.0  # time in the grammar (mask + advance + forced)
    token_ids: list[int] = field(default_factory=list)


class LocalModel(VisionModel):
    """A Qwen2-VL-family checkpoint (directory or hub id already on disk) run in-process."""

    def __init__(
        self,
        ref: str,
        *,
        dialect: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        attn_implementation: str = "sdpa",
        pixels: PixelBudget | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        repetition_penalty: float | None = None,
        frequency_penalty: float | None = None,
        seed: int | None = None,
        reuse_prefix: bool = True,
        compile: bool = False,
        constrain: bool = True,
        forced: ForcedMode = "batch",
        name: str | None = None,
        parts: tuple[Any, Any] | None = None,
        cudnn_attention: bool = False,
    ) -> None:
        """``parts``: an already built (processor, model), e.g. a model made from a config for a
        benchmark; ``ref`` then only names it and ``device``/``dtype`` are the model's.
        ``max_new_tokens``, ``temperature``, ``top_p``, ``top_k``, ``repetition_penalty``,
        ``frequency_penalty``:
        None takes the prompt's ``sampling`` (the family's settings), then the defaults
        (MAX_NEW_TOKENS, greedy)."""
        import torch

        if max_new_tokens is not None and max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        if temperature is not None and temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {temperature}")
        if top_p is not None and not 0 < top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {top_p}")
        if top_k is not None and top_k < 1:
            raise ConfigError(f"top_k must be at least 1, got {top_k}")
        if repetition_penalty is not None and repetition_penalty <= 0:
            raise ConfigError(f"repetition_penalty must be > 0, got {repetition_penalty}")
        if forced not in ("batch", "step", "off"):
            raise ConfigError(f"forced must be batch, step or off, got {forced!r}")
        self.ref = ref
        self.dialect = dialect
        self.name = name or f"local:{ref}"
        self.pixels = pixels or HUB_PIXELS
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p, self.top_k, self.repetition_penalty = top_p, top_k, repetition_penalty
        self.frequency_penalty = frequency_penalty
        self._sampling = Sampling()
        """The settings of the call in progress: explicit options over the prompt's."""
        self.reuse_prefix = reuse_prefix
        self.constrain = constrain
        self.forced = forced
        if parts is not None:
            self.processor, self.model = parts
            self.device, self.dtype = self.model.device, self.model.dtype
        else:
            self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
            self.dtype = torch_dtype(dtype, self.device)
            self.processor, self.model = load_checkpoint(
                ref, self.device, self.dtype, attn_implementation
            )
        self.config = self.model.config
        self.vocab_size = int(self.config.get_text_config().vocab_size)
        self.set_pixels(self.pixels)
        tok = self.processor.tokenizer
        self.tokenizer = tok
        self.stop_ids = frozenset(
            i
            for i in (
                tok.convert_tokens_to_ids("<|im_end|>"),
                tok.convert_tokens_to_ids("<|endoftext|>"),
            )
            if isinstance(i, int) and i >= 0
        )
        self.vision_start_id = int(self.config.vision_start_token_id)
        self._generator = torch.Generator(device=self.device)
        if seed is not None:
            self.seed(seed)
        self.cudnn_attention = cudnn_attention
        self._step_fn: Any = self._forward
        if compile and self.device.type == "cuda":
            compiled = torch.compile(self._forward, mode="reduce-overhead", dynamic=False)
            # CUDA graphs reuse their output buffer: copy the logits out before the next replay
            self._step_fn = lambda ids, pos: compiled(ids, pos).clone()
        self._prefix = PrefixCache(self.config, static=compile)
        self._vision: tuple[Any, Any] | None = None
        """((screenshot, grid), vision tower output) of the last call."""
        self.last_stats = DecodeStats()

    # -- VisionModel ---------------------------------------------------------------------
    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        return self.pixels.resize(width, height)

    def close(self) -> None:
        self._prefix.reset()
        self._vision = None

    def seed(self, seed: int) -> None:
        """Restart the sampler's random stream (temperature > 0) from ``seed``."""
        self._generator.manual_seed(seed)

    def reset_prefix(self) -> None:
        """Forget the cached prompt prefix (the next call prefills everything)."""
        self._prefix.reset()

    def _generate(self, prompt: Prompt) -> Generation:
        import torch

        timings: dict[str, float] = {}
        self._sampling = self.settings(prompt.sampling)
        with _timer(timings, "preprocess", self._sync):
            inputs = self.encode(prompt)
        grammar = prompt.grammar if self.constrain else None
        with torch.inference_mode(), self._attention_backends():
            image = prompt.images[-1] if prompt.images else None
            ids, stats = self._decode(inputs, grammar, timings, image, prompt.stop)
        with _timer(timings, "detokenize"):
            text = _cut(self.tokenizer.decode(ids, skip_special_tokens=False), prompt.stop)
        grid = inputs.get("image_grid_thw")
        visual = resized = None
        if grid is not None:
            merge = self.processor.image_processor.merge_size
            visual = int(sum(int(t * h * w) for t, h, w in grid.tolist()) // merge**2)
            patch = self.processor.image_processor.patch_size
            _, gh, gw = grid[-1].tolist()
            resized = (int(gw) * patch, int(gh) * patch)
        self.last_stats = stats
        return Generation(
            text=text,
            prompt_tokens=int(inputs["input_ids"].shape[1]),
            output_tokens=len(ids),
            visual_tokens=visual,
            resized=resized,
            timings=timings,
        )

    def settings(self, family: Sampling) -> Sampling:
        """The decoding settings of a call: each explicit option, else the family's, else the
        default (MAX_NEW_TOKENS tokens, greedy). An explicit ``temperature`` replaces the
        family's whole sampling rule (its top_k/top_p would otherwise still apply)."""

        def pick(mine: Any, theirs: Any, default: Any) -> Any:
            return mine if mine is not None else theirs if theirs is not None else default

        rule = Sampling() if self.temperature is not None else family
        return Sampling(
            temperature=pick(self.temperature, rule.temperature, 0.0),
            top_p=pick(self.top_p, rule.top_p, 1.0),
            top_k=pick(self.top_k, rule.top_k, 0),
            repetition_penalty=pick(self.repetition_penalty, family.repetition_penalty, 1.0),
            frequency_penalty=pick(self.frequency_penalty, family.frequency_penalty, 0.0),
            max_new_tokens=pick(self.max_new_tokens, family.max_new_tokens, MAX_NEW_TOKENS),
        )

    def _attention_backends(self) -> Any:
        """On CUDA, SDPA without the cuDNN backend (unless ``cudnn_attention``); else nothing."""
        if self.device.type != "cuda" or self.cudnn_attention:
            return contextlib.nullcontext()
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(
            [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
        )

    # -- preprocessing -------------------------------------------------------------------
    def encode(self, prompt: Prompt) -> Any:
        """The processor's tensors for ``prompt`` (chat template, image resize and patches)."""
        text = chat_text(self.processor, prompt)
        images = prompt.images or None
        return self.processor(text=[text], images=images, return_tensors="pt")

    def set_pixels(self, budget: PixelBudget) -> None:
        """Use ``budget`` (min/max pixels of the resized screenshot) from the next call on."""
        from transformers.image_utils import SizeDict

        self.pixels = budget
        ip = self.processor.image_processor
        ip.size = SizeDict(shortest_edge=budget.min_pixels, longest_edge=budget.max_pixels)
        for attr in ("min_pixels", "max_pixels"):  # older processors read these directly
            if hasattr(ip, attr):
                setattr(ip, attr, getattr(budget, attr))

    # -- decoding ------------------------------------------------------------------------
    def _decode(
        self,
        inputs: Any,
        grammar: str | None,
        timings: dict[str, float],
        image: Any = None,
        stop: tuple[str, ...] = (),
    ) -> tuple[list[int], DecodeStats]:
        try:
            return self._decode_impl(inputs, grammar, timings, image, stop)
        except BaseException:
            self.reset_prefix()  # the cache may hold a half-written step
            raise

    def _decode_impl(
        self,
        inputs: Any,
        grammar: str | None,
        timings: dict[str, float],
        image: Any,
        stop: tuple[str, ...],
    ) -> tuple[list[int], DecodeStats]:
        import torch

        stats = DecodeStats()
        dev = self.device
        input_ids = inputs["input_ids"]
        prompt_ids: list[int] = input_ids[0].tolist()
        n_prompt = len(prompt_ids)
        self.model.model.rope_deltas = None  # M-RoPE state from an earlier call must not leak
        constraint = self._constraint(grammar)

        # positions of the whole prompt; text before the first image has position == index
        grid = inputs.get("image_grid_thw")
        if grid is not None:
            pos, deltas = self.model.model.get_rope_index(
                input_ids, mm_token_type_ids=inputs["mm_token_type_ids"], image_grid_thw=grid
            )
            delta = int(deltas.reshape(-1)[0])
        else:
            pos = torch.arange(n_prompt).view(1, 1, -1).expand(3, 1, -1)
            delta = 0
        # the KV of text before the first image may be reused (at least one token is run)
        cut = (
            prompt_ids.index(self.vision_start_id)
            if self.vision_start_id in prompt_ids
            else n_prompt
        )
        cut = min(cut, n_prompt - 1)
        budget = int(self._sampling.max_new_tokens or MAX_NEW_TOKENS)
        need = n_prompt + budget + 1
        reuse = self._prefix.take(prompt_ids[:cut] if self.reuse_prefix else [], need)
        stats.reused_tokens = reuse
        stats.prefilled_tokens = n_prompt - reuse

        # tokens the grammar forces before the first choice
        head: list[int] = []
        if constraint is not None and self.forced != "off":
            t0 = time.perf_counter()
            head = self._take_forced(constraint)
            stats.mask_s += time.perf_counter() - t0
        n_fed = n_prompt
        with _timer(timings, "vision", self._sync):
            vision = None
            if grid is not None:
                vision = self._image_features(inputs, grid, image)
        with _timer(timings, "prefill", self._sync):
            feed = input_ids[:, reuse:].to(dev)
            positions = pos[:, :, reuse:].to(dev)
            if head and self.forced == "batch":
                feed = torch.cat([feed, torch.tensor([head], device=dev)], dim=1)
                positions = torch.cat([positions, self._positions(n_fed, len(head), delta)], dim=2)
                n_fed += len(head)
            logits = self._forward(
                feed, positions, {"image": vision} if vision is not None else None
            )
        t_decode = time.perf_counter()
        out: list[int] = []
        stats.forced_tokens = len(head)
        done = self._finished(head, out, constraint, budget)
        pending = [] if n_fed > n_prompt else head  # "step" mode feeds the head one by one
        while not done:
            chunks = [pending] if self.forced == "batch" else [[t] for t in pending]
            for chunk in filter(None, chunks):
                step = self._step_fn if len(chunk) == 1 else self._forward
                ids_t = torch.tensor([chunk], device=dev)
                logits = step(ids_t, self._positions(n_fed, len(chunk), delta))
                n_fed += len(chunk)
                stats.forward_passes += 1
            t0 = time.perf_counter()
            if constraint is not None:
                constraint.mask_logits(logits)
            t1 = time.perf_counter()
            token = self._pick(logits, prompt_ids, out)
            pending = [token]
            if constraint is not None:
                t2 = time.perf_counter()
                constraint.advance(token)
                if self.forced != "off" and token not in self.stop_ids:
                    pending += self._take_forced(constraint)
                stats.mask_s += (t1 - t0) + (time.perf_counter() - t2)
            stats.sampled_tokens += 1
            stats.forced_tokens += len(pending) - 1
            done = self._finished(pending, out, constraint, budget) or self._stopped(out, stop)
        self._sync()
        timings["decode"] = time.perf_counter() - t_decode
        timings["grammar"] = stats.mask_s
        stats.token_ids = out
        if self.reuse_prefix:
            self._prefix.keep(prompt_ids[:cut])
        return out, stats

    def _finished(self, new: list[int], out: list[int], constraint: Any, budget: int) -> bool:
        """Append ``new`` to ``out`` up to a stop token or the token budget; True when done."""
        for t in new:
            if t in self.stop_ids or len(out) >= budget:
                return True
            out.append(t)
        return len(out) >= budget or (constraint is not None and constraint.done)

    def _stopped(self, out: list[int], stop: tuple[str, ...]) -> bool:
        """Whether the answer's last tokens hold a stop string (the text is cut there)."""
        if not stop or not out:
            return False
        tail = self.tokenizer.decode(out[-16:], skip_special_tokens=False)
        return any(s in tail for s in stop)

    def _positions(self, start: int, n: int, delta: int) -> Any:
        import torch

        p = torch.arange(start + delta, start + delta + n, device=self.device)
        return p.view(1, 1, -1).expand(3, 1, -1)

    def _forward(self, ids: Any, positions: Any, mm_encoder_outputs: Any = None) -> Any:
        """One forward pass over ``ids`` at ``positions`` (3, 1, n); logits of the last token."""
        out = self.model(
            input_ids=ids,
            position_ids=positions,
            cache=self._prefix.cache,
            use_cache=True,
            mm_encoder_outputs=mm_encoder_outputs,
            logits_to_keep=1,
        )
        return out.logits[0, -1].float()

    def _pick(self, logits: Any, prompt_ids: list[int], out: list[int]) -> int:
        import torch

        s = self._sampling
        penalty = float(s.repetition_penalty or 1.0)
        if penalty != 1.0:  # as transformers' RepetitionPenaltyLogitsProcessor: prompt + answer
            seen = torch.tensor(sorted(set(prompt_ids) | set(out)), device=logits.device)
            picked = logits[seen]
            logits[seen] = torch.where(picked < 0, picked * penalty, picked / penalty)
        if s.frequency_penalty and out:  # OpenAI's: minus penalty x count in the answer so far
            ids, counts = torch.unique(torch.tensor(out, device=logits.device), return_counts=True)
            logits[ids] -= float(s.frequency_penalty) * counts.to(logits.dtype)
        temperature = float(s.temperature or 0.0)
        if temperature <= 0 or s.top_k == 1:
            return int(torch.argmax(logits))
        logits = logits / temperature
        if s.top_k and s.top_k < logits.shape[0]:
            kth = torch.topk(logits, int(s.top_k)).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if s.top_p is not None and s.top_p < 1.0:
            ordered, order = torch.sort(logits, descending=True)
            cum = torch.softmax(ordered, dim=-1).cumsum(-1)
            drop = cum - torch.softmax(ordered, dim=-1) >= s.top_p  # keep the first token always
            logits = logits.masked_fill(
                torch.zeros_like(drop).scatter(0, order, drop), float("-inf")
            )
        probs = torch.softmax(logits, dim=-1)
        # exponential-race sampling (argmax p_i / E_i, E_i ~ Exp(1)) draws i with probability
        # p_i, like multinomial, at a tenth of its cost over a 152k vocabulary on a CPU
        race = torch.empty_like(probs).exponential_(1.0, generator=self._generator)
        return int(torch.argmax(probs / race))

    def _constraint(self, grammar: str | None) -> Any:
        if grammar is None:
            return None
        from pixelpilot.vlm.constrained import GrammarConstraint

        return GrammarConstraint(grammar, self.tokenizer, self.vocab_size)

    def _take_forced(self, constraint: Any) -> list[int]:
        """Advance the grammar over every token it forces now; returns them."""
        taken: list[int] = []
        while not constraint.done and (forced := constraint.forced()):
            for t in forced:
                constraint.advance(t)
                taken.append(t)
                if t in self.stop_ids or constraint.done:
                    return taken
        return taken

    def _image_features(self, inputs: Any, grid: Any, image: Any) -> Any:
        """The vision tower's output for the prompt's screenshot. A re-ask within a step sends
        the same screenshot again: its features are reused instead of recomputed."""
        sizes = grid.tolist()
        if image is not None and self._vision is not None:
            (seen, seen_sizes), features = self._vision
            if seen is image and seen_sizes == sizes:
                return features
        pixel_values = inputs["pixel_values"].to(self.device, self.dtype)
        vision = self.model.model.get_image_features(
            pixel_values, grid.to(self.device), return_dict=True
        )
        self._vision = ((image, sizes), vision)
        return vision

    def _sync(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)


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


def _cut(text: str, stop: tuple[str, ...]) -> str:
    """``text`` up to the first stop string."""
    ends = [i for i in (text.find(s) for s in stop) if i >= 0]
    return text[: min(ends)] if ends else text


@contextlib.contextmanager
def _timer(timings: dict[str, float], key: str, sync: Any = None) -> Iterator[Any]:
    """Adds the block's seconds to ``timings[key]``; yields a function returning them."""
    t0 = time.perf_counter()
    spent = [0.0]
    try:
        yield lambda: spent[0]
    finally:
        if sync is not None:
            sync()
        spent[0] = time.perf_counter() - t0
        timings[key] = timings.get(key, 0.0) + spent[0]
