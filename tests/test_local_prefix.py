"""Prefix reuse with several screenshots per prompt, on the tiny checkpoints: the local backend
reuses the KV of everything a prompt shares with the last call, token ids AND images, and the
vision features of screenshots it saw before, and gives the same tokens as without any reuse."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
from PIL import Image, ImageDraw

from pixelpilot.agent.actions import DESKTOP_KINDS
from pixelpilot.agent.dialects import Qwen2VLDialect
from pixelpilot.agent.dialects.base import StepContext, Turn
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry
from pixelpilot.vlm.base import Message, Prompt
from pixelpilot.vlm.inputs import ImageSpan, chat_text, encode, pixel_values
from pixelpilot.vlm.local import LocalModel
from pixelpilot.vlm.prefix_cache import shared_prefix

SIZE = (224, 140)  # 8 x 5 = 40 visual tokens: several screenshots stay cheap


def shot(step: int, size: tuple[int, int] = SIZE) -> Image.Image:
    """Screenshot ``step``: one size for all (same placeholder tokens), different pixels."""
    img = Image.new("RGB", size, "white")
    x = 10 + 17 * step % (size[0] - 40)
    ImageDraw.Draw(img).rectangle((x, 30, x + 30, 60), fill=(20 * step % 255, 60, 160))
    return img


def ctx_for(size: tuple[int, int] = SIZE) -> StepContext:
    return StepContext("desktop", DESKTOP_KINDS, ScreenGeometry(*size), HUB_PIXELS.resize(*size))


UITARS_ANSWER = "Thought: The box moved; I click it.\nAction: click(start_box='({x},{y})')"


def uitars_layout(task: str, history: Sequence[Turn], current: Image.Image) -> Prompt:
    """UI-TARS's official agent layout, built by hand (bytedance/UI-TARS infer/osworld.py on
    branch feat/oswd_infer @5adcd33, history_n = 5): the default system message, the prompt as
    the first user message, each earlier step as its screenshot (only the last 4 earlier ones
    are kept) and its answer, the current screenshot last."""
    msgs = [
        Message("system", [{"type": "text", "text": "You are a helpful assistant."}]),
        Message("user", [{"type": "text", "text": f"You are a GUI agent.\n\n{task}\n"}]),
    ]
    keep_from = len(history) - 4
    for i, turn in enumerate(history):
        if i >= keep_from and turn.image is not None:
            msgs.append(Message("user", [{"type": "image", "image": turn.image}]))
        msgs.append(Message("assistant", [{"type": "text", "text": turn.raw}]))
    msgs.append(Message("user", [{"type": "image", "image": current}]))
    return Prompt(messages=msgs)


def qwen2vl_layout(task: str, history: Sequence[Turn], current: Image.Image) -> Prompt:
    """qwen2vl's Qwen-Agent layout, by the real dialect: every step's screenshot in a
    ``✿RESULT✿`` of one continued assistant turn."""
    return Qwen2VLDialect(thought_tokens=8).build_prompt(task, history, current, ctx_for())


@pytest.fixture(scope="module")
def small(tiny_small) -> LocalModel:
    return LocalModel(str(tiny_small), max_new_tokens=10)


@pytest.fixture(scope="module")
def qwen(tiny_qwen) -> LocalModel:
    return LocalModel(str(tiny_qwen), max_new_tokens=48)


def test_encoding_is_the_processors_own(small):
    """Token ids, token types, grids and pixels as the processor's ``__call__`` makes them, for
    images of several sizes in several messages (each image's pixels processed alone)."""
    images = [shot(0), shot(1, (300, 200)), shot(2), shot(3, (1280, 800))]
    prompt = Prompt(
        [
            Message("user", [{"type": "image", "image": images[0]}, {"type": "text", "text": "hi"}]),
            Message("assistant", [{"type": "text", "text": "ok"}, {"type": "image", "image": images[1]}]),
            Message("user", [{"type": "image", "image": images[2]}, {"type": "image", "image": images[3]}]),
        ]
    )  # fmt: skip
    proc = small.processor
    ref = proc(text=[chat_text(proc, prompt)], images=images, return_tensors="pt")
    enc = encode(proc, prompt)
    assert torch.equal(enc.input_ids, ref["input_ids"])
    assert torch.equal(enc.mm_token_type_ids, ref["mm_token_type_ids"])
    assert torch.equal(enc.grid, ref["image_grid_thw"])
    pixels = [pixel_values(proc, im, s.key[1]) for im, s in zip(images, enc.spans, strict=True)]
    assert torch.equal(torch.cat(pixels), ref["pixel_values"])
    pad = proc.image_token_id
    for span in enc.spans:
        ids = enc.ids
        assert set(ids[span.start : span.end]) == {pad} and pad not in (
            ids[span.start - 1],
            ids[span.end],
        )
    # same size, other pixels: other identity; the same pixels in another object: the same one
    assert enc.spans[0].key != enc.spans[2].key and enc.spans[0].key[1] == enc.spans[2].key[1]
    again = encode(proc, Prompt([Message("user", [{"type": "image", "image": images[0].copy()}])]))
    assert again.spans[0].key == enc.spans[0].key


def test_shared_prefix_ends_at_the_first_image_that_differs():
    a, b = (b"a", (1, 2, 2)), (b"b", (1, 2, 2))
    ids = [1, 2, 9, 9, 3, 9, 9, 4, 5]
    one = (ImageSpan(2, 4, 0, a), ImageSpan(5, 7, 1, a))
    assert shared_prefix(ids, one, ids, one) == 9
    assert shared_prefix(ids, one, ids, one, limit=8) == 8
    assert shared_prefix(ids, one, ids, (one[0], ImageSpan(5, 7, 1, b))) == 5  # same tokens
    assert shared_prefix(ids, one, ids, (ImageSpan(2, 4, 0, b), one[1])) == 2
    assert shared_prefix(ids, one, [1, 2, 9, 7], (ImageSpan(2, 3, 0, a),)) == 2  # never inside
    assert shared_prefix(ids, one, [1, 2, 9, 9, 3, 9], (one[0],)) == 5


Layout = Callable[[str, Sequence[Turn], Image.Image], Prompt]


def run_steps(
    model: LocalModel,
    layout: Layout,
    steps: int,
    *,
    reuse: bool,
    seed: int | None,
    answers: Callable[[int, str], str],
) -> list[tuple[list[int], Any, int]]:
    """A run of ``steps`` steps, a new screenshot each; each step's (tokens, stats, prompt
    tokens)."""
    model.reset_prefix()
    model.reuse_prefix = reuse
    model.vision_cache = 8 if reuse else 0
    if seed is not None:
        model.seed(seed)
    history: list[Turn] = []
    out = []
    for step in range(steps):
        gen = model.generate(layout("Click the box", history, shot(step)))
        out.append((model.last_stats.token_ids, model.last_stats, gen.prompt_tokens or 0))
        history.append(Turn(raw=answers(step, gen.text), image=shot(step)))
    model.reuse_prefix = True
    model.vision_cache = 8
    return out


@pytest.mark.parametrize("seed", [None, 5], ids=["greedy", "seeded"])
def test_qwen2vl_continued_turn_reuses_every_earlier_screenshot_exactly(qwen, seed):
    """Qwen-Agent's layout only grows: each step reuses the whole last prompt (every earlier
    screenshot, 1 to 7 of them) and the answer's tokens; only the new result and screenshot
    are computed, and the tokens are the ones of a run without any reuse."""
    qwen.temperature = 1.0 if seed is not None else None
    try:
        runs = {
            reuse: run_steps(
                qwen, qwen2vl_layout, 8, reuse=reuse, seed=seed, answers=lambda _, t: t
            )
            for reuse in (False, True)
        }
    finally:
        qwen.temperature = None
    for step, ((plain, ps, _), (fast, fs, _)) in enumerate(zip(*runs.values(), strict=True)):
        assert plain == fast, f"step {step}"
        assert ps.reused_tokens == 0 and ps.encoded_images == step + 1
        if step:
            assert fs.prefix_images == step and fs.encoded_images == 1 and fs.cached_images == 0
            assert fs.reused_tokens >= runs[True][step - 1][2]  # all of the last prompt
    assert len({tuple(t) for t, _, _ in runs[True]}) > 1  # the answers are not all one


@pytest.mark.parametrize("seed", [None, 5], ids=["greedy", "seeded"])
def test_uitars_window_of_five_slides_and_stays_exact(small, seed):
    """UI-TARS keeps the last 5 screenshots between its answers: until the window is full each
    step reuses all of the last prompt; once it slides (the oldest screenshot dropped), the
    prefix ends before the first screenshot and the 4 kept earlier ones come from the vision
    cache. 8 steps: 0 to 7 earlier screenshots, 6 and 7 with the window sliding."""
    small.temperature = 1.0 if seed is not None else None

    def answer(step: int, _: str) -> str:
        return UITARS_ANSWER.format(x=100 + 10 * step, y=200)

    try:
        runs = {
            reuse: run_steps(small, uitars_layout, 8, reuse=reuse, seed=seed, answers=answer)
            for reuse in (False, True)
        }
    finally:
        small.temperature = None
    for step, ((plain, ps, _), (fast, fs, _)) in enumerate(zip(*runs.values(), strict=True)):
        assert plain == fast, f"step {step}"
        assert ps.reused_tokens == 0 and ps.encoded_images == min(step, 4) + 1
        assert fs.encoded_images == 1
        if 0 < step <= 4:  # the prompt grew: every earlier screenshot is in the reused prefix
            assert fs.prefix_images == step and fs.cached_images == 0
            assert fs.reused_tokens >= runs[True][step - 1][2]
        elif step > 4:  # slid: the text before the first screenshot, then features from cache
            assert fs.prefix_images == 0 and fs.cached_images == 4
            assert 0 < fs.reused_tokens < ps.prefilled_tokens // 2


def fresh(model: LocalModel, prompt: Prompt) -> list[int]:
    """The tokens ``model`` gives ``prompt`` with nothing kept from earlier calls."""
    model.reset_prefix()
    model.generate(prompt)
    model.reset_prefix()
    return model.last_stats.token_ids


def test_an_image_of_the_same_size_with_other_pixels_ends_the_prefix(small):
    """Same text, same placeholder tokens, one screenshot swapped for another of its size: the
    prefix ends at that screenshot (not at the text's end), the screenshot after it comes from
    the vision cache, and the answer is the fresh one. The same pixels in a new object are the
    same screenshot."""
    history = [Turn(raw=UITARS_ANSWER.format(x=10 * i, y=5), image=shot(i)) for i in range(3)]
    base = uitars_layout("Click the box", history, shot(3))
    changed = [history[0], replace_image(history[1], shot(9)), history[2]]
    swapped = uitars_layout("Click the box", changed, shot(3))
    expected = fresh(small, swapped)
    small.generate(base)
    assert small.last_stats.encoded_images == 4
    small.generate(swapped)
    st = small.last_stats
    assert st.token_ids == expected
    second = small.encode(swapped).spans[1]
    assert st.reused_tokens == second.start  # up to the swapped screenshot's first pad token
    assert (st.prefix_images, st.encoded_images, st.cached_images) == (1, 1, 2)
    copies = uitars_layout(
        "Click the box", [replace_image(t, t.image.copy()) for t in history], shot(3).copy()
    )
    small.generate(base)
    small.generate(copies)
    assert small.last_stats.prefix_images == 4 and small.last_stats.encoded_images == 0


def replace_image(turn: Turn, image: Image.Image) -> Turn:
    return Turn(raw=turn.raw, action=turn.action, image=image, note=turn.note)


def test_a_reask_after_earlier_screenshots_computes_no_image(small):
    """Retry feedback goes before the current screenshot: every screenshot's features are
    reused (from the prefix or the cache), and the answer is the fresh one."""
    history = [Turn(raw=UITARS_ANSWER.format(x=10 * i, y=5), image=shot(i)) for i in range(2)]
    first = uitars_layout("Click the box", history, shot(2))
    again = uitars_layout("Click the box", history, shot(2))
    again.messages[-1].content.insert(0, {"type": "text", "text": "Your last answer was rejected."})
    expected = fresh(small, again)
    small.generate(first)
    small.generate(again)
    st = small.last_stats
    assert st.token_ids == expected
    assert (st.prefix_images, st.cached_images, st.encoded_images) == (2, 1, 0)


def test_reused_prefix_and_features_match_the_reference_forward(small):
    """Against transformers' own ``generate`` on the processor's inputs (its own M-RoPE
    positions and vision features for all three screenshots): the same greedy tokens, whether
    the call prefills everything or reuses an earlier prompt's prefix and features."""
    history = [Turn(raw=UITARS_ANSWER.format(x=10 * i, y=5), image=shot(i)) for i in range(2)]
    prompt = uitars_layout("Click the box", history, shot(2))
    proc = small.processor
    inputs = proc(text=[chat_text(proc, prompt)], images=prompt.images, return_tensors="pt")
    with torch.inference_mode():
        ref = small.model.generate(**inputs, do_sample=False, max_new_tokens=10)
    expected = ref[0, inputs["input_ids"].shape[1] :].tolist()
    got = fresh(small, prompt)
    assert got == expected[: len(got)] and got
    small.generate(uitars_layout("Click the box", history[:1], shot(1)))  # the step before
    small.generate(prompt)
    assert small.last_stats.token_ids == got and small.last_stats.prefix_images == 2


def test_the_vision_cache_is_bounded(small):
    """With room for 2 screenshots, a slid UI-TARS window recomputes what fell out, and the
    tokens stay the same."""
    answer = lambda step, _: UITARS_ANSWER.format(x=step, y=1)  # noqa: E731
    plain = run_steps(small, uitars_layout, 6, reuse=False, seed=None, answers=answer)
    small.reset_prefix()
    small.vision_cache = 2
    try:
        history: list[Turn] = []
        for step in range(6):
            small.generate(uitars_layout("Click the box", history, shot(step)))
            st = small.last_stats
            assert st.token_ids == plain[step][0]
            assert st.cached_images <= 2
            history.append(Turn(raw=answer(step, ""), image=shot(step)))
        assert st.encoded_images > 1  # step 5: the window slid past what 2 places keep
    finally:
        small.vision_cache = 8


@pytest.mark.parametrize("prefix", [0, 7, 150, 250, 299])
def test_prefix_attention_is_transformers_sdpa(small, prefix):
    """A chunk after a cached prefix, through the CPU attention the backend installs (padded
    causal query for a short prefix, one shared mask for a long one, plain SDPA for one token
    or an empty cache): the logits of transformers' own SDPA, to the bit."""
    from transformers import DynamicCache

    from pixelpilot.vlm.attention import PREFIX_SDPA

    model = small.model
    assert model.config.text_config._attn_implementation == PREFIX_SDPA
    ids = torch.randint(0, 500, (1, 300), generator=torch.Generator().manual_seed(prefix))
    pos = torch.arange(300).view(1, 1, -1).expand(3, 1, -1)
    logits = {}
    try:
        for impl in ("sdpa", PREFIX_SDPA):
            model.set_attn_implementation({"text_config": impl})
            cache = DynamicCache(config=model.config)
            with torch.inference_mode():
                if prefix:
                    model(input_ids=ids[:, :prefix], position_ids=pos[..., :prefix], cache=cache)
                out = model(input_ids=ids[:, prefix:], position_ids=pos[..., prefix:], cache=cache)
            logits[impl] = out.logits
    finally:
        model.set_attn_implementation({"text_config": PREFIX_SDPA})
    assert torch.equal(logits["sdpa"], logits[PREFIX_SDPA])


def test_a_collected_images_digest_is_forgotten():
    """The digest memo holds no entry for an image that is gone, and a late callback of an
    image whose id a new image took does not drop the new image's entry."""
    import gc
    import weakref

    from pixelpilot.vlm import inputs

    img = shot(0)
    key, value = id(img), inputs.digest(img)
    assert inputs._DIGESTS[key][1] == value and inputs.digest(img.copy()) == value
    del img
    gc.collect()
    assert key not in inputs._DIGESTS
    new = shot(1)
    inputs.digest(new)
    stale = weakref.ref(shot(2))  # another image's ref, as if an old one had this id
    inputs._forget(id(new), stale)
    assert inputs._DIGESTS[id(new)][0]() is new
