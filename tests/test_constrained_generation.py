"""The proof of constrained decoding: random tiny Qwen2-VL checkpoints, sampled at temperature 1
on real screenshots, only ever answer with calls that parse, validate and land on the screen.

Screenshots: the Tk fixture app captured from the session's Xvfb (desktop), and the simulated
phone app's screen as ``adb screencap`` would return it (mobile). Each goes through the real
processor (a smaller pixel budget keeps 500+ generations fast; the image is real), the real
vision tower and the real decode loop of ``vlm.local`` with the dialect's grammar: 100
generations per dialect in the suite (one test per dialect, far inside the per-test timeout on a
loaded 2-core machine); the full proof, 500 per dialect (3,000 in all), is the same tests with
``PIXELPILOT_PROOF_RUNS=500``. Most runs use the small-vocabulary checkpoint, some the real
151,643-rank Qwen vocabulary (model vocab 151936).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pixelpilot.agent.actions import DESKTOP_KINDS, MOBILE_KINDS, points
from pixelpilot.agent.dialects import TableDialect, get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.geometry import PixelBudget, ScreenGeometry, to_device
from pixelpilot.vlm.base import MAX_NEW_TOKENS

pytest.importorskip("torchvision", reason="Qwen2VLProcessor needs torchvision")

GEN_PIXELS = PixelBudget(3136, 128 * 28 * 28)
"""The processor downsizes the real screenshot to ~128 visual tokens: fast, and still real."""
GRAMMAR_DIALECTS = ("qwen2vl", "qwen25vl", "uitars", "uitars-1.5", "osatlas", "showui")
RUNS = int(os.environ.get("PIXELPILOT_PROOF_RUNS", "100"))
"""Generations per dialect (PIXELPILOT_PROOF_RUNS=500 for the full proof)."""
QWEN_RUNS = max(1, RUNS * 3 // 25)
"""Of them, with the real-vocabulary checkpoint (60 of 500)."""
SMALL_RUNS = RUNS - QWEN_RUNS
"""Of them, with the small-vocabulary checkpoint."""
THOUGHT = 24
"""Thought budget (tokens) of the engine's dialects here: random weights fill any budget, and
500 generations of 512-token thoughts would take an hour; test_grammar walks the full one."""
EXTRA_CALLS = 0
"""Calls admitted after the first (OS-Atlas's further action lines, ShowUI's further dicts):
random weights often write them, none is executed, and they made these two dialects
10-50% slower here; test_grammar's walks and the official corpus (check_dialect) cover
them."""
LEAST_FORCED = {"osatlas": 1, "uitars": 1, "uitars-1.5": 1}
"""Tokens the grammar forces in every answer, where fewer than 3."""
TASKS = ("Open the settings", "Type hello into the name field", "Scroll down", "Press submit")


@pytest.fixture(scope="module")
def screens(display: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Image.Image]:
    """Real screenshots: the fixture app on Xvfb, and the phone app's screen."""
    from pixelpilot.scenarios.fixture import FixtureApp
    from pixelpilot.scenarios.phone_app import PhoneApp
    from pixelpilot.tools.desktop import DesktopDevice

    state = tmp_path_factory.mktemp("fixture") / "state.json"
    with FixtureApp(state, display=display) as _app:
        device = DesktopDevice(display=display)
        device.open()
        try:
            desktop = device.observe().image.copy()
        finally:
            device.close()
    return {"desktop": desktop, "mobile": PhoneApp(start="settings").render()}


@pytest.fixture(scope="module")
def models(tiny_small: Path, tiny_qwen: Path) -> Iterator[dict[str, Any]]:
    """Both tiny checkpoints, loaded once for all dialects, sampled at temperature 1."""
    from pixelpilot.vlm.local import LocalModel

    loaded = {
        vocab: LocalModel(
            str(path), pixels=GEN_PIXELS, temperature=1.0, seed=seed, max_new_tokens=MAX_NEW_TOKENS
        )
        for vocab, path, seed in (("small", tiny_small, 11), ("qwen", tiny_qwen, 12))
    }
    yield loaded
    for model in loaded.values():
        model.close()


def _ctx(device: str, image: Image.Image, model: Any) -> StepContext:
    kinds = DESKTOP_KINDS if device == "desktop" else MOBILE_KINDS
    return StepContext(device, kinds, ScreenGeometry(*image.size), model.resized_size(*image.size))


def _sample(model: Any, name: str, runs: int, screens: dict[str, Image.Image]) -> dict[str, Any]:
    """``runs`` generations in dialect ``name``, alternating desktop and mobile; all outcomes."""
    failures: list[str] = []
    kinds: Counter[str] = Counter()
    valid: Counter[str] = Counter()
    n = forced = sampled = 0
    least_forced = MAX_NEW_TOKENS
    dialect = get_dialect(name)
    if isinstance(dialect, TableDialect):
        dialect.thought_tokens = THOUGHT  # random weights write thoughts to the budget's end
        dialect.extra_calls = EXTRA_CALLS
    for i in range(runs):
        # the first half on the desktop, then the phone: consecutive prompts share their
        # instructions, which the backend's prefix reuse does not compute again
        device = ("desktop", "mobile")[2 * i >= runs]
        image = screens[device]
        ctx = _ctx(device, image, model)
        prompt = dialect.build_prompt(TASKS[i % len(TASKS)], [], image, ctx)
        assert prompt.grammar is not None
        gen = model.generate(prompt)
        assert gen.resized == ctx.resized
        n += 1
        forced += model.last_stats.forced_tokens
        least_forced = min(least_forced, model.last_stats.forced_tokens)
        sampled += model.last_stats.sampled_tokens
        try:
            action = dialect.parse(gen.text, ctx)
            assert action.kind in ctx.kinds, action.kind
            for p in points(to_device(action, ctx.geometry, ctx.resized)):
                assert ctx.geometry.contains(int(p.x), int(p.y)), p
            kinds[f"{name}:{action.kind}"] += 1
            valid[name] += 1
        except Exception as err:  # noqa: BLE001 - every failure is collected and shown
            failures.append(f"{name}/{device}: {gen.text!r}: {type(err).__name__}: {err}")
    return {
        "n": n,
        "failures": failures,
        "kinds": kinds,
        "valid": valid,
        "forced": forced,
        "sampled": sampled,
        "least_forced": least_forced,
    }


@pytest.mark.parametrize("name", GRAMMAR_DIALECTS)
def test_sampled_generations_from_random_weights_always_parse_and_validate(
    name: str, models: dict[str, Any], screens: dict[str, Image.Image]
) -> None:
    small = _sample(models["small"], name, SMALL_RUNS, screens)
    qwen = _sample(models["qwen"], name, QWEN_RUNS, screens)
    failures = small["failures"] + qwen["failures"]
    total = small["n"] + qwen["n"]
    assert total == RUNS
    assert not failures, f"{len(failures)}/{total} invalid:\n" + "\n".join(failures[:5])
    assert small["valid"][name] + qwen["valid"][name] == total
    # random weights spread over the offered actions: most kinds show up
    seen = set(small["kinds"] | qwen["kinds"])
    print(name, "kinds:", dict(small["kinds"] + qwen["kinds"]))  # shown with -s
    assert len(seen) >= 6, seen
    # the grammar forces the dialect's markers (and JSON keys): no generation samples them
    # (OS-Atlas's answer opens with a choice, "thoughts:" or "actions:": "actions" is sampled
    # and only ":\n" forced before a verb such as WAIT; UI-TARS's marker ends its free thought,
    # which official answers may leave out: the model writes it, the call's punctuation is forced)
    assert min(small["least_forced"], qwen["least_forced"]) >= LEAST_FORCED.get(name, 3), (
        small,
        qwen,
    )
