"""The pieces of ``train`` that subclass TRL/transformers (imported only when training).

``PixelPilotTrainer`` is TRL's ``SFTTrainer`` with two changes: it takes the collator's
``metas`` out of the batch before the forward pass, and it adds an optional ``extra_loss``
computed from the language backbone's output of the same forward pass (caught by a forward hook
on the backbone: TRL's fused LM head returns only per-token scores). ``ProgressLines`` turns the
trainer's logs into ``TrainLog`` lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback
from trl import SFTTrainer

if TYPE_CHECKING:
    from pixelpilot.agent.train import ExtraLoss


class PixelPilotTrainer(SFTTrainer):  # type: ignore[misc]
    """SFTTrainer + per-example metas + an optional extra loss (see the module docstring)."""

    def __init__(
        self,
        *args: Any,
        extra_loss: ExtraLoss | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.extra_loss = extra_loss
        self.ask = {"output_hidden_states": output_hidden_states,
                    "output_attentions": output_attentions}  # fmt: skip
        self.pixelpilot_hyper: dict[str, Any] = {}

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        metas = inputs.pop("metas", [])
        if self.extra_loss is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        caught: dict[str, Any] = {}
        hook = _backbone(self.accelerator.unwrap_model(model)).register_forward_hook(
            lambda _m, _a, out: caught.__setitem__("out", out)
        )
        try:
            for k, v in self.ask.items():
                if v:
                    inputs[k] = True
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            hook.remove()
        loss, outputs = result if return_outputs else (result, None)
        extra = self.extra_loss(model, inputs, caught["out"], metas)
        mode = "train" if model.training else "eval"
        self._metrics[mode]["extra_loss"].append(float(extra.detach().float().mean()))
        # like TRL's MoE aux loss: a per-batch mean, spread over the accumulated micro-batches
        steps = self.current_gradient_accumulation_steps if num_items_in_batch is not None else 1
        loss = loss + extra / steps
        return (loss, outputs) if return_outputs else loss


def _backbone(model: Any) -> Any:
    """The module TRL's fused forward runs (``base_model``: Qwen2VLModel), under a PEFT wrap."""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model.base_model


class ProgressLines(TrainerCallback):  # type: ignore[misc]
    """Calls ``show`` with TrainLog's fields at each of the trainer's log events (every
    logging_steps optimizer steps)."""

    def __init__(self, show: Callable[..., None]) -> None:
        self.show = show
        self._t = time.perf_counter()
        self._step = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._t, self._step = time.perf_counter(), state.global_step

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        logs = logs or {}
        if "loss" not in logs:  # the end-of-training summary
            return
        now = time.perf_counter()
        done = max(1, state.global_step - self._step)
        s_per_step = (now - self._t) / done
        self._t, self._step = now, state.global_step
        from tqdm.auto import tqdm

        with tqdm.external_write_mode():  # the line above the progress bar, not through it
            self.show(
                step=state.global_step,
                total=state.max_steps,
                loss=_num(logs.get("loss")),
                lr=_num(logs.get("learning_rate")),
                s_per_step=s_per_step,
                epoch=_num(logs.get("epoch")),
            )


class ResumedSchedule(TrainerCallback):  # type: ignore[misc]
    """On resume, the learning rate of THIS run's schedule at the step it resumes from.

    A checkpoint's optimizer state holds the learning rate its own schedule had reached: resumed
    with a larger ``max_steps`` (training extended), the next step would run at the end of the
    old schedule (0 after a linear decay). The schedule's function is this run's; its position
    and base rates come from the checkpoint."""

    def on_train_begin(
        self, args: Any, state: Any, control: Any, optimizer: Any = None,
        lr_scheduler: Any = None, **kw: Any,
    ) -> None:  # fmt: skip
        lambdas = getattr(lr_scheduler, "lr_lambdas", None)
        if state.global_step == 0 or optimizer is None or lambdas is None:
            return
        now = lr_scheduler.last_epoch
        lrs = [base * f(now) for base, f in zip(lr_scheduler.base_lrs, lambdas, strict=True)]
        for group, lr in zip(optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        lr_scheduler._last_lr = lrs


class BarOnly(ProgressCallback):  # type: ignore[misc]
    """The Trainer's progress bar without its dict of logs under it (ProgressLines shows them)."""

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        return None


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) else None
