"""The local backend on a CUDA GPU: bf16 by default, the same tokens as the CPU, torch.compile.

These run only where ``torch.cuda.is_available()``; everywhere else they skip and say so. They
need no display and no session fixtures, so on a GPU machine without X they run on their own:

    python -m pytest -q --noconftest tests/test_gpu.py

Random tiny checkpoints (built here, no download) are compared greedily in float32 with TF32
off, where the CPU and the GPU compute the same logits up to rounding; bf16 runs are checked
for what must hold at any precision: every sampled call parses, validates and lands on screen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from pixelpilot.agent.actions import DESKTOP_KINDS, MOBILE_KINDS, points
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext, Turn
from pixelpilot.agent.geometry import PixelBudget, ScreenGeometry, to_device
from pixelpilot.vlm.local import LocalModel
from pixelpilot.vlm.tiny import build_tiny

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA GPU: the bf16 / torch.compile path of vlm.local runs only on one",
)
pytest.importorskip("torchvision", reason="Qwen2VLProcessor needs torchvision")

BUDGET = PixelBudget(3136, 1280 * 28 * 28)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("gpu") / "tiny-small", vocab="small")


@pytest.fixture(autouse=True)
def exact_fp32() -> Iterator[None]:
    """float32 matmuls and convolutions without TF32, so CPU and GPU agree up to rounding."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def desktop_screen() -> Image.Image:
    img = Image.new("RGB", (1920, 1080), (240, 240, 240))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 1919, 40), fill=(40, 44, 52))
    d.rectangle((1600, 980, 1860, 1040), fill=(30, 100, 220))
    d.text((1690, 1002), "Submit", fill="white")
    return img


def phone_screen() -> Image.Image:
    from pixelpilot.scenarios.phone_app import PhoneApp

    return PhoneApp(start="settings").render()


def ctx_for(model: LocalModel, device: str, image: Image.Image) -> StepContext:
    kinds = DESKTOP_KINDS if device == "desktop" else MOBILE_KINDS
    return StepContext(device, kinds, ScreenGeometry(*image.size), model.resized_size(*image.size))


COMPARED = ("qwen2vl", "uitars-1.5", "osatlas", "showui")


def outputs(model: LocalModel) -> list[str]:
    """Greedy raw outputs: each compared dialect on both screens, two steps each (the second
    with the first in its history, so a cached prefix is reused)."""
    texts: list[str] = []
    for name in COMPARED:
        dialect = get_dialect(name)
        for device in ("desktop", "mobile"):
            image = desktop_screen() if device == "desktop" else phone_screen()
            ctx = ctx_for(model, device, image)
            history: list[Turn] = []
            for _ in range(2):
                gen = model.generate(dialect.build_prompt("Open the settings", history, image, ctx))
                texts.append(gen.text)
                history.append(Turn(raw=gen.text))
    return texts


def test_cuda_defaults_to_bf16_and_every_sampled_call_is_valid(tiny: Path) -> None:
    failures: list[str] = []
    for compile_step in (False, True):
        model = LocalModel(str(tiny), pixels=BUDGET, temperature=1.0, seed=5, compile=compile_step)
        assert model.device.type == "cuda" and model.dtype == torch.bfloat16
        for name in ("qwen2vl", "uitars-1.5", "showui"):
            dialect = get_dialect(name)
            for i in range(10):
                device = ("desktop", "mobile")[i % 2]
                image = desktop_screen() if device == "desktop" else phone_screen()
                ctx = ctx_for(model, device, image)
                gen = model.generate(dialect.build_prompt("Open the settings", [], image, ctx))
                assert gen.resized == ctx.resized and gen.visual_tokens > 0
                assert gen.timings["decode"] > 0
                try:
                    action = dialect.parse(gen.text, ctx)
                    assert action.kind in ctx.kinds
                    for p in points(to_device(action, ctx.geometry, ctx.resized)):
                        assert ctx.geometry.contains(int(p.x), int(p.y)), p
                except Exception as err:  # noqa: BLE001 - all failures are shown together
                    failures.append(f"{name} compile={compile_step}: {gen.text!r}: {err}")
        model.close()
    assert not failures, "\n".join(failures[:5])


def test_cuda_gives_the_cpus_tokens_in_fp32(tiny: Path) -> None:
    runs: dict[str, list[str]] = {}
    for device in ("cpu", "cuda"):
        model = LocalModel(str(tiny), device=device, dtype="float32", pixels=BUDGET)
        runs[device] = outputs(model)
        model.close()
    assert runs["cpu"] == runs["cuda"]


def test_compiled_step_and_prefix_reuse_give_the_eager_tokens_on_cuda(tiny: Path) -> None:
    runs: dict[str, list[str]] = {}
    reused: dict[str, int] = {}
    for label, options in {
        "eager, no reuse": {"reuse_prefix": False},
        "eager, reuse": {"reuse_prefix": True},
        "compiled, reuse": {"reuse_prefix": True, "compile": True},
    }.items():
        model = LocalModel(str(tiny), dtype="float32", pixels=BUDGET, **options)  # type: ignore[arg-type]
        runs[label] = outputs(model)
        reused[label] = model.last_stats.reused_tokens
        model.close()
    assert len({tuple(texts) for texts in runs.values()}) == 1, runs
    assert reused["eager, no reuse"] == 0
    assert reused["eager, reuse"] > 0 and reused["compiled, reuse"] > 0
