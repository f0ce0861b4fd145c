"""The local transformers backend on tiny Qwen2-VL checkpoints: real processor, real model, real
decode loop, real screenshots from Xvfb, real agent loop on the fixture app."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

import pytest
from PIL import Image, ImageDraw

from pixelpilot.agent.actions import DESKTOP_KINDS
from pixelpilot.agent.dialects import Qwen2VLDialect, get_dialect
from pixelpilot.agent.dialects.base import StepContext, Turn
from pixelpilot.agent.errors import ConfigError
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget, ScreenGeometry, visual_tokens
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import DirectoryRecorder, load_trajectory
from pixelpilot.vlm.base import Prompt
from pixelpilot.vlm.local import LocalModel

SMALL_BUDGET = PixelBudget(3136, 1280 * 28 * 28)


def screen(width: int = 640, height: int = 400) -> Image.Image:
    img = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(img).rectangle((width // 4, height // 4, width // 2, height // 2), fill="navy")
    return img


def qwen2vl_prompt(image: Image.Image, history: list[Turn] | None = None, grammar=True) -> Prompt:
    geom = ScreenGeometry(*image.size)
    ctx = StepContext("desktop", DESKTOP_KINDS, geom, HUB_PIXELS.resize(*image.size))
    dialect = Qwen2VLDialect(thought_tokens=8)  # random weights: keep the free thought short
    prompt = dialect.build_prompt("Click the box", history or [], image, ctx)
    assert prompt.grammar == dialect.grammar(ctx, continuation=bool(history))  # its own grammar
    if not grammar:
        prompt.grammar = None
    return prompt


def test_generates_on_a_real_screenshot_and_reports_what_it_saw(tiny_small, desktop, fixture_app):
    obs = desktop.observe()
    w, h = obs.image.size
    model = LocalModel(str(tiny_small), max_new_tokens=24)
    assert model.dtype.is_floating_point and str(model.dtype) == "torch.float32"  # CPU
    gen = model.generate(qwen2vl_prompt(obs.image))
    assert gen.resized == model.resized_size(w, h) == HUB_PIXELS.resize(w, h) == (1288, 812)
    assert gen.visual_tokens == visual_tokens(w, h) == 46 * 29
    assert gen.prompt_tokens > gen.visual_tokens
    assert 0 < gen.output_tokens <= 24
    assert set(gen.timings) >= {"preprocess", "vision", "prefill", "decode", "grammar"}
    assert all(v >= 0 for v in gen.timings.values()) and gen.seconds > 0
    get_dialect("qwen2vl").parse(gen.text, _ctx(w, h))  # constrained: it parses and validates


def _ctx(w: int, h: int) -> StepContext:
    return StepContext("desktop", DESKTOP_KINDS, ScreenGeometry(w, h), HUB_PIXELS.resize(w, h))


@pytest.mark.parametrize(
    ("budget", "resized", "tokens"),
    [(None, (1932, 1092), 2691), (SMALL_BUDGET, (1316, 728), 1222)],
)
def test_pixel_budget_is_set_on_the_processor_and_reported(tiny_small, budget, resized, tokens):
    model = LocalModel(str(tiny_small), pixels=budget, max_new_tokens=1, constrain=False)
    assert model.resized_size(1920, 1080) == resized
    gen = model.generate(qwen2vl_prompt(screen(1920, 1080), grammar=False))
    assert gen.resized == resized and gen.visual_tokens == tokens


@pytest.mark.parametrize("size", [(1080, 2400), (2560, 1440), (333, 777)])
def test_resized_size_is_what_the_processor_does(tiny_small, size):
    model = LocalModel(str(tiny_small), pixels=SMALL_BUDGET, max_new_tokens=1, constrain=False)
    gen = model.generate(qwen2vl_prompt(screen(*size), grammar=False))
    assert gen.resized == model.resized_size(*size)


def test_missing_weights_fail_fast_with_one_line(tmp_path, tiny_small):
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as err:
        LocalModel("Qwen/Qwen2-VL-7B-Instruct")
    msg = str(err.value)
    assert "\n" not in msg and "hf download Qwen/Qwen2-VL-7B-Instruct" in msg
    assert time.monotonic() - t0 < 30
    with pytest.raises(ConfigError, match="not found"):
        LocalModel(str(tmp_path / "nope"))
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_small.iterdir():
        if f.suffix != ".safetensors":
            (broken / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ConfigError, match="incomplete checkpoint") as err:
        LocalModel(str(broken))
    assert "\n" not in str(err.value)


def test_bad_options_are_config_errors(tiny_small):
    with pytest.raises(ConfigError, match="dtype"):
        LocalModel(str(tiny_small), dtype="int3")
    with pytest.raises(ConfigError, match="max_new_tokens"):
        LocalModel(str(tiny_small), max_new_tokens=0)


def _history(n: int) -> list[Turn]:
    return [Turn(raw=f'✿FUNCTION✿: click\n✿ARGS✿: {{"point": [{i}, 5]}}') for i in range(n)]  # fmt: skip


@pytest.fixture(scope="module")
def qwen_model(tiny_qwen) -> LocalModel:
    """One Qwen-vocabulary model for the module (its llguidance tokenizer is built once)."""
    return LocalModel(str(tiny_qwen))


@contextlib.contextmanager
def options(model: LocalModel, **kw: object) -> Iterator[LocalModel]:
    """``model`` with some options changed, and no cached prefix, for the block."""
    saved = {k: getattr(model, k) for k in kw}
    model.reset_prefix()
    for k, v in kw.items():
        setattr(model, k, v)
    try:
        yield model
    finally:
        for k, v in saved.items():
            setattr(model, k, v)
        model.reset_prefix()


@pytest.mark.parametrize("constrain", [False, True])
def test_prefix_reuse_gives_identical_outputs(qwen_model, constrain):
    prompts = [  # a different screenshot each step, a growing history
        qwen2vl_prompt(screen(320 + 28 * step, 240), _history(step), grammar=constrain)
        for step in range(3)
    ]
    runs = {}
    for reuse in (False, True):
        with options(qwen_model, reuse_prefix=reuse, max_new_tokens=12 if not constrain else 64):
            runs[reuse] = []
            for prompt in prompts:
                gen = qwen_model.generate(prompt)
                runs[reuse].append((gen.text, gen.prompt_tokens, qwen_model.last_stats))
    for (a, na, sa), (b, nb, sb) in zip(runs[False], runs[True], strict=True):
        assert a == b and na == nb and sa.token_ids == sb.token_ids
        assert sa.reused_tokens == 0
    reused = [s.reused_tokens for _, _, s in runs[True]]
    # steps 2 and 3 reuse the system prompt + tool schema + task (+ the shared history)
    assert reused[0] == 0 and reused[1] > 300 and reused[2] > reused[1]
    assert [s.prefilled_tokens for _, _, s in runs[True]][1] < runs[False][1][1] - 300
    # the M-RoPE state does not leak from one call to the next
    assert qwen_model.model.model.rope_deltas is None


def test_forced_tokens_in_one_pass_give_identical_outputs_and_save_passes(qwen_model):
    prompt = qwen2vl_prompt(screen(), grammar=True)
    runs = {}
    for mode in ("batch", "step", "off"):
        with options(qwen_model, forced=mode, reuse_prefix=False, max_new_tokens=64):
            runs[mode] = (qwen_model.generate(prompt).text, qwen_model.last_stats)
    texts = {mode: text for mode, (text, _) in runs.items()}
    assert len(set(texts.values())) == 1, texts
    batch, step, off = (runs[m][1] for m in ("batch", "step", "off"))
    assert batch.token_ids == step.token_ids == off.token_ids
    assert batch.forced_tokens == step.forced_tokens > 5  # "✿FUNCTION✿: ", JSON keys...
    assert batch.sampled_tokens == step.sampled_tokens < off.sampled_tokens
    # a stop token, sampled once the call is complete, is no answer token (qwen2vl's grammar
    # admits the trained "\n✿RESULT✿" or a second call after the first, so it asks)
    assert off.forced_tokens == 0
    assert len(off.token_ids) <= off.sampled_tokens <= len(off.token_ids) + 1
    # token by token, every token but the last few (not fed where the grammar is done) costs a
    # pass; batched, a run of forced tokens rides along with the token before it
    assert len(step.token_ids) - 3 <= step.forward_passes <= len(step.token_ids)
    assert batch.forward_passes <= batch.sampled_tokens < step.forward_passes


def test_static_cache_path_matches_the_dynamic_one(tiny_small):
    # compile=True runs torch.compile only on CUDA; on CPU it exercises the StaticCache path
    dyn = LocalModel(str(tiny_small), max_new_tokens=40)
    static = LocalModel(str(tiny_small), max_new_tokens=40, compile=True)
    for step in range(2):
        prompt = qwen2vl_prompt(screen(), _history(step))
        assert dyn.generate(prompt).text == static.generate(prompt).text
    assert static.last_stats.reused_tokens > 0


def test_sampling_is_seeded_and_always_valid(qwen_model):
    prompt = qwen2vl_prompt(screen(), grammar=True)
    texts = []
    for _ in range(2):
        with options(qwen_model, temperature=1.0) as model:
            model.seed(7)
            texts.append([model.generate(prompt).text for _ in range(3)])
    assert texts[0] == texts[1] and len(set(texts[0])) > 1
    for text in texts[0]:
        get_dialect("qwen2vl").parse(text, _ctx(640, 400))


def test_frequency_penalty_lowers_tokens_the_answer_already_has(qwen_model):
    """OpenAI's frequency penalty (UI-TARS v1 decodes with 1): a huge one forbids any token to
    come twice; without it the random tiny model repeats itself."""
    prompt = qwen2vl_prompt(screen(), grammar=False)
    runs = {}
    for penalty in (None, 1e4):
        with options(qwen_model, frequency_penalty=penalty, max_new_tokens=40):
            qwen_model.generate(prompt)
            runs[penalty] = qwen_model.last_stats.token_ids
    assert len(set(runs[None])) < len(runs[None])
    assert len(set(runs[1e4])) == len(runs[1e4]) > 10


def test_agent_loop_end_to_end_with_the_tiny_checkpoint(tiny_qwen, desktop, fixture_app, tmp_path):
    """Xvfb screenshot -> processor -> constrained generate -> action -> real execution ->
    trajectory with timings, visual token counts and raw text."""
    model = LocalModel(str(tiny_qwen), temperature=1.0, seed=3, name="tiny-qwen")
    run_dir = tmp_path / "run"
    agent = Agent(
        model=model,
        device=desktop,
        dialect=Qwen2VLDialect(thought_tokens=16),
        budgets=Budgets(max_steps=3, max_retries=0),
        recorder=DirectoryRecorder(run_dir),
    )
    result = agent.run("Click the Submit button")
    assert result.status in {"success", "failure", "step_budget"}, result.reason
    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    assert len(steps) == len(result.steps) >= 1
    w, h = desktop.geometry.width, desktop.geometry.height
    for step in steps:
        (attempt,) = step["attempts"]  # constrained: never a rejected answer
        assert attempt["error"] is None and attempt["action"] is not None
        assert "✿FUNCTION✿: " in attempt["raw"]  # after a free thought
        assert attempt["visual_tokens"] == visual_tokens(w, h)
        assert attempt["prompt_tokens"] > attempt["visual_tokens"] and attempt["output_tokens"] > 0
        assert step["resized"] == list(HUB_PIXELS.resize(w, h))
        assert step["timings"]["generate"] > 0 and step["timings"]["capture"] > 0
        assert attempt["timings"]["prefill"] > 0 and attempt["timings"]["decode"] > 0
        assert set(step["timings"]) >= {"capture", "prompt", "generate", "parse", "execute"}
        if step["action"]["kind"] not in ("finish", "ask_user", "wait"):
            assert step["executed"]["commands"], step  # it really ran on the display
    traj = load_trajectory(run_dir)
    assert traj.meta.model == model.name and len(traj.steps) == len(steps)
    assert traj.screenshot_path(traj.steps[0]) is not None


def test_a_reask_reuses_the_screenshots_vision_features(tiny_small):
    """Feedback within a step resends the same screenshot: the vision tower does not run again,
    and the answer is what a fresh model gives for that prompt."""
    image = Image.new("RGB", (320, 200), (40, 120, 200))
    dialect = get_dialect("qwen2vl")
    ctx = StepContext(
        "desktop", DESKTOP_KINDS, ScreenGeometry(320, 200), HUB_PIXELS.resize(320, 200)
    )
    first = dialect.build_prompt("Click", [], image, ctx)
    again = dialect.build_prompt("Click", [], image, ctx, feedback="the point is off the screen")
    model = LocalModel(str(tiny_small), max_new_tokens=24)
    model.generate(first)
    gen = model.generate(again)
    assert gen.timings["vision"] < 0.001 < model.generate(first).timings["prefill"]
    fresh = LocalModel(str(tiny_small), max_new_tokens=24)
    assert fresh.generate(again).text == gen.text
