"""The local transformers backend: any Qwen2-VL-architecture checkpoint, our own decode loop.

Loading is the standard one (``AutoProcessor`` / ``AutoModelForImageTextToText``, local files
only: a missing checkpoint is a one-line ConfigError, never a download or a hang). The pixel
budget is always set on the processor (default: the min/max pixels the checkpoint's
preprocessor_config.json names, as the hub's and ``pixelpilot train``'s do, else the hub
checkpoints' 3136..12845056, never the bare processor's 1280*28*28), so a screenshot goes in at
full resolution unless the user or the checkpoint sets a budget.

Decoding is a plain loop over ``model(...)`` instead of ``generate`` because it needs three things
``generate`` does not give together:
- grammar constraints (``prompt.grammar``, through ``constrained.GrammarConstraint``);
- grammar-forced tokens (markers, JSON keys) fed in ONE forward pass with the sampled token before
  them, instead of one decode step each;
- a KV cache of everything the last call fed the model, screenshots included, kept across
  steps: each call reuses the longest prefix its prompt shares with it, token ids AND images
  (vlm/prefix_cache.py), and only runs the rest; a screenshot after that prefix that was seen
  before takes its vision features from a cache (vlm/vision_cache.py) instead of the ViT, and
  only new screenshots go through the image processor (vlm/inputs.py).
The backend reads only the Prompt: its ``sampling`` (the family's decoding settings) are the
defaults under the constructor's explicit options, ``continue_final`` renders the last
(assistant) message open for the model to continue, and ``stop`` strings end the answer.
M-RoPE positions are computed once per call over the whole prompt by the model's own
``get_rope_index`` and passed explicitly (positions after an image depend on every earlier
image's grid); ``model.model.rope_deltas`` (state that survives between calls) is reset each
call.
With ``compile=True`` the cache is a StaticCache and, on CUDA, single-token steps run through
``torch.compile`` (CUDA graphs); prefill and multi-token forced chunks stay eager.

On a CPU, text attention runs through ``attention.prefix_sdpa``: a chunk after a cached prefix
takes the causal kernel or one shared mask, not a boolean mask per layer (3x slower there).
On CUDA, attention runs on flash / memory-efficient SDPA, not cuDNN's: cuDNN builds a new graph
for each new key length, which a decode with a growing cache hits on every pass (measured on
an H200: docs/models.md). ``cudnn_attention=True`` allows it again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pixelpilot.agent.errors import ConfigError
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget
from pixelpilot.vlm.attention import forget_masks, use_prefix_sdpa
from pixelpilot.vlm.base import MAX_NEW_TOKENS, Generation, Prompt, Sampling, VisionModel
from pixelpilot.vlm.checkpoint import load_checkpoint, saved_pixels, torch_dtype
from pixelpilot.vlm.inputs import Encoded, chat_text, encode, rope_positions, set_pixels
from pixelpilot.vlm.prefix_cache import PrefixCache
from pixelpilot.vlm.sampling import pick
from pixelpilot.vlm.vision_cache import VisionCache

__all__ = ["DecodeStats", "LocalModel", "chat_text"]

ForcedMode = Literal["batch", "step", "off"]
"""How grammar-forced tokens are fed: all in one forward pass with the token before them
("batch"), one forward pass each ("step": same tokens, same text, for comparison), or not used
at all, every token sampled under the mask ("off")."""


@dataclass
class DecodeStats:
    """What the last ``generate`` did, beyond Generation's fields (bench and tests read it)."""

    reused_tokens: int = 0  # prompt tokens whose KV came from the previous call
    prefilled_tokens: int = 0  # prompt tokens run in the prefill forward pass
    prefix_images: int = 0  # images inside the reused prefix (nothing computed for them)
    cached_images: int = 0  # images after it whose vision features came from the cache
    encoded_images: int = 0  # images run through the image processor and the vision tower
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
        vision_cache: int = 8,
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
        (MAX_NEW_TOKENS, greedy). ``reuse_prefix``: keep the KV cache of the last call for
        the next; ``vision_cache``: how many screenshots' vision features are kept (0: none)."""
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
        if vision_cache < 0:
            raise ConfigError(f"vision_cache must be >= 0, got {vision_cache}")
        if forced not in ("batch", "step", "off"):
            raise ConfigError(f"forced must be batch, step or off, got {forced!r}")
        self.ref = ref
        self.dialect = dialect
        self.name = name or f"local:{ref}"
        # the budget asked for, else the one the checkpoint was saved with (pixelpilot train
        # writes the one it trained with), else the hub checkpoints'
        self.pixels = pixels or (saved_pixels(ref) if parts is None else None) or HUB_PIXELS
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
        if self.device.type == "cpu" and not compile and attn_implementation == "sdpa":
            use_prefix_sdpa(self.model)  # a chunk after a cached prefix without a mask tensor
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
        self._vision = VisionCache(self.model, self.processor, vision_cache)
        self.last_stats = DecodeStats()

    # -- VisionModel ---------------------------------------------------------------------
    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        return self.pixels.resize(width, height)

    def close(self) -> None:
        self.reset_prefix()

    @property
    def vision_cache(self) -> int:
        """How many screenshots' vision features are kept across calls (0: none)."""
        return self._vision.size

    @vision_cache.setter
    def vision_cache(self, size: int) -> None:
        self._vision.size = size
        self._vision.clear()

    def seed(self, seed: int) -> None:
        """Restart the sampler's random stream (temperature > 0) from ``seed``."""
        self._generator.manual_seed(seed)

    def reset_prefix(self) -> None:
        """Forget what earlier calls left (the KV prefix, the screenshots' vision features):
        the next call computes everything."""
        self._prefix.reset()
        self._vision.clear()

    def _generate(self, prompt: Prompt) -> Generation:
        import torch

        timings: dict[str, float] = {}
        self._sampling = self.settings(prompt.sampling)
        with _timer(timings, "preprocess", self._sync):
            enc = self.encode(prompt)
        grammar = prompt.grammar if self.constrain else None
        with torch.inference_mode(), self._attention_backends():
            ids, stats = self._decode(enc, grammar, timings, prompt.stop)
        with _timer(timings, "detokenize"):
            text = _cut(self.tokenizer.decode(ids, skip_special_tokens=False), prompt.stop)
        visual = resized = None
        if enc.spans:
            visual = sum(s.end - s.start for s in enc.spans)
            patch = self.processor.image_processor.patch_size
            _, gh, gw = enc.spans[-1].key[1]
            resized = (gw * patch, gh * patch)
        self.last_stats = stats
        return Generation(
            text=text,
            prompt_tokens=int(enc.input_ids.shape[1]),
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
    def encode(self, prompt: Prompt) -> Encoded:
        """``prompt`` as the model takes it: the chat template's text as token ids, each image's
        placeholder tokens and identity (its pixels are processed only when needed)."""
        return encode(self.processor, prompt)

    def set_pixels(self, budget: PixelBudget) -> None:
        """Use ``budget`` (min/max pixels of the resized screenshot) from the next call on."""
        self.pixels = budget
        set_pixels(self.processor, budget)

    # -- decoding ------------------------------------------------------------------------
    def _decode(
        self,
        enc: Encoded,
        grammar: str | None,
        timings: dict[str, float],
        stop: tuple[str, ...] = (),
    ) -> tuple[list[int], DecodeStats]:
        try:
            return self._decode_impl(enc, grammar, timings, stop)
        except BaseException:
            self.reset_prefix()  # the cache may hold a half-written step
            raise

    def _decode_impl(
        self,
        enc: Encoded,
        grammar: str | None,
        timings: dict[str, float],
        stop: tuple[str, ...],
    ) -> tuple[list[int], DecodeStats]:
        import torch

        stats = DecodeStats()
        dev = self.device
        input_ids = enc.input_ids
        prompt_ids = enc.ids
        n_prompt = len(prompt_ids)
        self.model.model.rope_deltas = None  # M-RoPE state from an earlier call must not leak
        constraint = self._constraint(grammar)
        pos, delta = rope_positions(self.model, enc)
        budget = int(self._sampling.max_new_tokens or MAX_NEW_TOKENS)
        # the KV of the longest prefix shared with the last call, images included, is reused;
        # at least one token is run
        limit = n_prompt - 1 if self.reuse_prefix else 0
        reuse = self._prefix.take(prompt_ids, enc.spans, n_prompt + budget + 1, limit)
        stats.reused_tokens = reuse
        stats.prefilled_tokens = n_prompt - reuse
        fed = list(prompt_ids)  # what the cache holds after this call

        # tokens the grammar forces before the first choice
        head: list[int] = []
        if constraint is not None and self.forced != "off":
            t0 = time.perf_counter()
            head = self._take_forced(constraint)
            stats.mask_s += time.perf_counter() - t0
        n_fed = n_prompt
        rest = [s for s in enc.spans if s.start >= reuse]
        timings.setdefault("vision", 0.0)
        vision = self._vision.features(enc, rest, timings, self._sync) if rest else None
        stats.prefix_images = len(enc.spans) - len(rest)
        stats.encoded_images = self._vision.computed if rest else 0
        stats.cached_images = len(rest) - stats.encoded_images
        with _timer(timings, "prefill", self._sync):
            feed = input_ids[:, reuse:].to(dev)
            positions = pos[:, :, reuse:].to(dev)
            if head and self.forced == "batch":
                feed = torch.cat([feed, torch.tensor([head], device=dev)], dim=1)
                positions = torch.cat([positions, self._positions(n_fed, len(head), delta)], dim=2)
                n_fed += len(head)
                fed += head
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
                fed += chunk
                stats.forward_passes += 1
            t0 = time.perf_counter()
            if constraint is not None:
                constraint.mask_logits(logits)
            t1 = time.perf_counter()
            token = pick(logits, self._sampling, prompt_ids, out, self._generator)
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
        self._prefix.keep(fed, enc.spans)
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
        forget_masks()
        return out.logits[0, -1].float()

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

    def _sync(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)


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
