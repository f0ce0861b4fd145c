"""Where an eager one-token decode pass spends its time on a GPU: the CPU (Python, kernel
launches) or the GPU (kernels). Qwen2-VL-2B architecture, random bf16 weights, one agent step
(1920x1080 screenshot at 1280*28*28) under torch.profiler.

    python bench/gpu_profile.py          # on a CUDA machine, ~30 s
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
from gpu_bench import arch_config, build_model, prompt_for, screenshot  # noqa: E402

from pixelpilot.agent.geometry import PixelBudget  # noqa: E402
from pixelpilot.vlm.local import LocalModel  # noqa: E402
from pixelpilot.vlm.tiny import SPECIAL_TOKENS, build_tiny  # noqa: E402


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    from transformers import AutoProcessor

    with tempfile.TemporaryDirectory() as tmp:
        processor = AutoProcessor.from_pretrained(build_tiny(Path(tmp) / "qwen", vocab="qwen"))
    ids = {t: processor.tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    model = build_model(
        arch_config("qwen2-vl-2b", ids, False), torch.device("cuda"), torch.bfloat16
    )
    lm = LocalModel("2b", parts=(processor, model), max_new_tokens=64, forced="off",
                    reuse_prefix=False, pixels=PixelBudget(3136, 1280 * 28 * 28))  # fmt: skip
    image = screenshot()
    resized = lm.resized_size(*image.size)
    lm.generate(prompt_for(1, image.copy(), resized))  # warm-up
    # one-token passes alone, timed with a sync each: the wall time a decode step costs
    prompt = prompt_for(1, image.copy(), resized)
    gen = lm.generate(prompt)
    passes = lm.last_stats.forward_passes
    print(f"eager: {passes} passes, decode {gen.timings['decode'] * 1e3:.0f} ms, "
          f"{gen.timings['decode'] / max(1, passes) * 1e3:.1f} ms a pass")  # fmt: skip
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        gen = lm.generate(prompt_for(1, image.copy(), resized))
        wall = time.perf_counter() - t0
    events = prof.key_averages()
    gpu_us = sum(e.self_device_time_total for e in events)
    print(f"profiled step: wall {wall * 1e3:.0f} ms, GPU kernels {gpu_us / 1e3:.0f} ms in all")
    print(events.table(sort_by="self_cpu_time_total", row_limit=20, max_name_column_width=60))


if __name__ == "__main__":
    main()
