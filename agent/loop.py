"""The agent loop: observe -> prompt -> generate -> parse -> check -> execute -> record.

Errors are caught by kind (see errors.py): a ModelRetry (bad output, point off-screen, policy
refusal) goes back to the model with its reason, at most ``max_retries`` times per step and is
never executed; a DeviceError or ModelError ends the run with status "error", the trajectory
intact. Recording and progress reporting are callbacks around the loop, not code inside it.

The loop is total in the model's output: whatever text a backend returns, the step ends in an
executed action, a retry with a reason or a clean end of the run. An answer longer than
``Budgets.max_answer_chars`` is refused unread; an exception a parser should not raise
(RecursionError, ValidationError, ...) becomes a retry and is recorded as ``Attempt.internal``.
The time budget is checked after every stage of a step, parsing included.

Around the loop: a ``Policy`` judges each action before it runs (``policy.py``); a
``RunControl`` (``control.py``) lets a person stop the run or take over; after each action the
screen is observed at once, how much it changed is recorded on the step, and the same action
repeated on an unchanged screen is pointed out to the model and ends the run as "stuck"
(``effects.py``).
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pixelpilot.agent.actions import Action
from pixelpilot.agent.control import STOPPED_REASON, TOOK_OVER_NOTE, RunControl
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import Dialect, StepContext, Turn
from pixelpilot.agent.effects import RepeatGuard, screen_change
from pixelpilot.agent.errors import (
    ActionDenied,
    DeviceError,
    ModelError,
    ModelRetry,
    ParseError,
    StoppedByUser,
    UserTookOver,
)
from pixelpilot.agent.geometry import to_device
from pixelpilot.agent.policy import ConfirmHook, Policy
from pixelpilot.agent.trajectory import (
    Attempt,
    NullRecorder,
    Recorder,
    RunMeta,
    RunResult,
    Status,
    StepRecord,
    package_versions,
)
from pixelpilot.tools.base import Device, Observation
from pixelpilot.vlm.base import VisionModel

PolicyHook = Callable[[Action], None]
"""Called with every parsed action before it runs; raise ActionDenied to refuse it."""
INTERRUPTED_NOTE = "This action was interrupted: the user took over."


@dataclass(frozen=True)
class Budgets:
    """Limits of one run. max_retries counts rejected answers per step; max_repeats ends the
    run as stuck after that many identical actions in a row with no change on the screen (0:
    never); an answer longer than max_answer_chars is refused unread."""

    max_steps: int = 15
    max_seconds: float = 300.0
    max_retries: int = 2
    max_repeats: int = 5
    max_answer_chars: int = 32_768


@dataclass(frozen=True)
class _EndRun:
    """How a run ends: the final status, why, and the model's answer."""

    status: Status
    reason: str
    answer: str = ""


class Agent:
    """Runs tasks with one model on one (already opened) device.

    >>> Agent(model=ScriptedModel([...]), device=desktop, dialect="qwen2vl").run("Click OK")
    """

    def __init__(
        self,
        *,
        model: VisionModel,
        device: Device,
        dialect: Dialect | str,
        budgets: Budgets | None = None,
        recorder: Recorder | None = None,
        policy: Policy | PolicyHook | None = None,
        confirm: ConfirmHook | None = None,
        control: RunControl | None = None,
        on_step: Callable[[StepRecord], None] | None = None,
        ask_user: Callable[[str], str] | None = None,
        meta_extra: dict | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.dialect = get_dialect(dialect) if isinstance(dialect, str) else dialect
        self.budgets = budgets or Budgets()
        self.recorder = recorder or NullRecorder()
        self.policy = policy
        """A ``Policy`` (rules, e.g. from a YAML file) or a function that raises ActionDenied."""
        self.confirm = confirm
        """Asked before an action a policy's confirm rule matches; True lets it run."""
        self.control = control
        """Kill and pause switches a person (hotkeys) flips while the run goes on."""
        self.on_step = on_step
        self.ask_user = ask_user
        self.meta_extra = meta_extra or {}
        self._paused_before = 0.0  # the control's paused time before this run began

    def run(self, task: str) -> RunResult:
        """Work on ``task`` until the model finishes, a budget runs out or something fails."""
        t_start = time.monotonic()
        self.recorder.start(self._meta(task))
        steps: list[StepRecord] = []
        history: list[Turn] = []
        seen: Observation | None = None  # the screen after the last action, already observed
        repeats = RepeatGuard(self.budgets.max_repeats)
        end = _EndRun("step_budget", f"the step budget ({self.budgets.max_steps}) ran out")
        saved, self.device.interlock = self.device.interlock, self.control
        self._paused_before = self.control.paused_seconds if self.control is not None else 0.0
        try:
            for index in range(1, self.budgets.max_steps + 1):
                if self._out_of_time(t_start):
                    end = self._time_up()
                    break
                took_over = self._hold(history)
                if took_over is not None:
                    seen = None  # the person may have changed anything: look again
                step, outcome, seen = self._step(
                    index, task, history, t_start, seen, repeats, took_over
                )
                steps.append(step)
                if self.on_step is not None:
                    self.on_step(step)
                if outcome is not None:
                    end = outcome
                    break
        except StoppedByUser:
            end = _EndRun("error", STOPPED_REASON)
        except KeyboardInterrupt:
            end = _EndRun("error", "interrupted")
        finally:
            self.device.interlock = saved
        result = RunResult(
            status=end.status,
            answer=end.answer,
            reason=end.reason,
            steps=steps,
            seconds=time.monotonic() - t_start,
        )
        return self.recorder.finish(result)

    def _meta(self, task: str) -> RunMeta:
        device_meta: dict[str, object] = {
            "name": self.device.name,
            "kind": self.device.kind,
            "supported": sorted(self.device.supported),
        }
        with contextlib.suppress(DeviceError):  # the first observe reports it as a step error
            device_meta.update(asdict(self.device.geometry))
        return RunMeta(
            task=task,
            model=self.model.name,
            dialect=self.dialect.name,
            device=device_meta,
            budgets=asdict(self.budgets),
            versions=package_versions(),
            extra=self.meta_extra,
        )

    def _out_of_time(self, t_start: float) -> bool:
        paused = self.control.paused_seconds - self._paused_before if self.control else 0.0
        return time.monotonic() - t_start - paused > self.budgets.max_seconds

    def _time_up(self) -> _EndRun:
        return _EndRun("time_budget", f"the time budget ({self.budgets.max_seconds:g} s) ran out")

    def _check(self) -> None:
        """Between stages: raises StoppedByUser / UserTookOver when a person flipped a switch."""
        if self.control is not None:
            self.control.check()

    def _hold(self, history: list[Turn]) -> float | None:
        """While a person has taken over, wait; then tell the model (a note on the last turn).
        Returns the seconds waited, or None when no one took over."""
        if self.control is None:
            return None
        if self.control.stopped:
            raise StoppedByUser(STOPPED_REASON)
        if not self.control.paused:
            return None
        waited = self.control.wait_while_paused()
        if history:
            history[-1] = replace(history[-1], note=_join(history[-1].note, TOOK_OVER_NOTE))
        return waited

    def _step(
        self,
        index: int,
        task: str,
        history: list[Turn],
        t_start: float,
        seen: Observation | None,
        repeats: RepeatGuard,
        took_over: float | None = None,
    ) -> tuple[StepRecord, _EndRun | None, Observation | None]:
        """One step: (its record, how the run ends or None, the screen after its action if it
        was already observed)."""
        step = StepRecord(index=index, started_at=time.time(), geometry={}, took_over_s=took_over)
        timings = step.timings  # filled in place as the stages run
        timings.update(dict.fromkeys(("capture", "prompt", "generate", "parse", "execute"), 0.0))
        obs: Observation | None = None
        try:
            obs = seen if seen is not None else self.device.observe()
            timings["capture"] = obs.seconds if seen is None else 0.0  # timed where it ran
            geom = obs.geometry
            step.geometry = asdict(geom)
            step.boxes = obs.extra.get("boxes")
            step.resized = resized = self.model.resized_size(geom.width, geom.height)
            ctx = StepContext(self.device.kind, self.device.supported, geom, resized)
            feedback: str | None = None
            for attempt_no in range(self.budgets.max_retries + 1):
                if attempt_no and self._out_of_time(t_start):
                    return self._record(step, obs), self._time_up(), None
                t0 = time.perf_counter()
                prompt = self.dialect.build_prompt(task, history, obs.image, ctx, feedback)
                timings["prompt"] += time.perf_counter() - t0
                gen = self.model.generate(prompt)
                timings["generate"] += gen.seconds
                attempt = Attempt(
                    raw=gen.text,
                    generate_s=gen.seconds,
                    prompt_tokens=gen.prompt_tokens,
                    output_tokens=gen.output_tokens,
                    visual_tokens=gen.visual_tokens,
                    timings=gen.timings,
                )
                step.attempts.append(attempt)
                self._check()
                if self._out_of_time(t_start):
                    attempt.error = "not read: the time budget ran out"
                    return self._record(step, obs), self._time_up(), None
                t0 = time.perf_counter()
                try:
                    action, device_action = self._accept(gen.text, ctx, attempt)
                except ModelRetry as exc:
                    feedback = attempt.error = str(exc)
                    continue
                finally:
                    timings["parse"] += time.perf_counter() - t0
                attempt.action = action
                self._check()
                if self._out_of_time(t_start):
                    return self._record(step, obs), self._time_up(), None
                t0 = time.perf_counter()
                try:
                    outcome, note = self._act(action, device_action, step)
                except ModelRetry as exc:  # the device refused it (a key it cannot press, ...)
                    feedback = attempt.error = str(exc)
                    attempt.action = None
                    continue
                except UserTookOver:
                    step.action, step.device_action, step.result = (
                        action, device_action, INTERRUPTED_NOTE)  # fmt: skip
                    history.append(Turn(gen.text, action, obs.image, INTERRUPTED_NOTE))
                    return self._record(step, obs), None, None
                finally:
                    timings["execute"] = time.perf_counter() - t0
                step.action, step.device_action = action, device_action
                history.append(Turn(raw=gen.text, action=action, image=obs.image, note=note))
                after = None
                if outcome is None and step.executed is not None and index < self.budgets.max_steps:
                    after = self.device.observe()  # the next step's screen, seen now
                    timings["capture"] += after.seconds
                    outcome = self._effect(step, obs, after, history, repeats)
                step.result = history[-1].note
                return self._record(step, obs), outcome, after
            reason = f"no valid action after {len(step.attempts)} answers; last error: {feedback}"
            return self._record(step, obs), _EndRun("failure", reason), None
        except UserTookOver:  # before anything ran: the answer is dropped, the step ends here
            if step.attempts and step.attempts[-1].error is None:
                step.attempts[-1].error = "dropped: the user took over"
                step.attempts[-1].action = None
            return self._record(step, obs), None, None
        except (DeviceError, ModelError, StoppedByUser) as exc:
            step.error = str(exc)
            return self._record(step, obs), _EndRun("error", str(exc)), None
        except KeyboardInterrupt:  # Ctrl+C, SIGTERM: keep what the step did, end the run
            step.error = "interrupted"
            return self._record(step, obs), _EndRun("error", "interrupted"), None

    def _accept(self, raw: str, ctx: StepContext, attempt: Attempt) -> tuple[Action, Action]:
        """The answer as an action (model space, then screen pixels) the policy allows.

        Raises ModelRetry for anything that cannot run. Whatever else a parser raises is
        pixelpilot's bug, not the model's: it is recorded on the attempt (``internal``) and the
        model is asked again, so no answer can crash the loop.
        """
        limit = self.budgets.max_answer_chars
        if len(raw) > limit:
            raise ParseError(
                f"the answer is {len(raw):,} characters long; answer with one call of at most "
                f"{limit:,} characters"
            )
        t0 = time.perf_counter()
        try:
            action = self.dialect.parse(raw, ctx)
            device_action = to_device(action, ctx.geometry, ctx.resized)
        except ModelRetry:
            raise
        except Exception as exc:  # noqa: BLE001 - a parser bug must not end the run
            attempt.internal = _internal(exc)
            raise ParseError(
                f"the answer could not be read ({type(exc).__name__}); answer again with "
                "exactly one call in the format shown"
            ) from None
        finally:
            attempt.parse_s = time.perf_counter() - t0
        self._police(action, device_action, attempt)
        return action, device_action

    def _police(self, action: Action, device_action: Action, attempt: Attempt) -> None:
        """The policy's verdict: returns when the action may run, else ActionDenied."""
        if self.policy is None:
            return
        try:
            if isinstance(self.policy, Policy):
                self.policy.enforce(action, device_action, self.device, self.confirm)
            else:
                self.policy(action)
        except (ModelRetry, DeviceError, StoppedByUser, UserTookOver):
            raise
        except Exception as exc:  # noqa: BLE001 - a broken policy denies, never allows
            attempt.internal = _internal(exc)
            raise ActionDenied(f"the policy could not judge this action ({exc})") from None

    def _act(
        self, action: Action, device_action: Action, step: StepRecord
    ) -> tuple[_EndRun | None, str]:
        """Carry out one accepted action: (how the run ends or None, the note the model is told
        about it beyond its family's own format: "" for nothing)."""
        if action.kind == "finish":
            end = _EndRun(action.status, f"the model finished ({action.status})", action.answer)
            return end, ""
        if action.kind == "ask_user":
            if self.ask_user is None:
                reason = f"the model asked the user {action.question!r} and no one can answer"
                return _EndRun("failure", reason), ""
            return None, f"The user answered: {self.ask_user(action.question)}"
        step.executed = self.device.execute(device_action)
        return None, step.executed.note  # e.g. a robot's "grasped nothing"

    def _effect(
        self,
        step: StepRecord,
        before: Observation,
        after: Observation,
        history: list[Turn],
        repeats: RepeatGuard,
    ) -> _EndRun | None:
        """Record how much the screen changed after the step's action; a note for the model
        when it did not; the end of the run when the same action keeps changing nothing."""
        extra = after.extra
        change = extra["change"] if "change" in extra else screen_change(before.image, after.image)
        step.screen_change = change
        step.screen_changed = None if change is None else change > 0
        note, stuck = repeats.after(step.action, change)
        if note:
            history[-1] = replace(history[-1], note=_join(history[-1].note, note))
        return _EndRun("failure", stuck) if stuck else None

    def _record(self, step: StepRecord, obs: Observation | None) -> StepRecord:
        t0 = time.perf_counter()
        recorded = self.recorder.append(step, obs.image if obs is not None else None)
        recorded.timings["record"] = time.perf_counter() - t0
        return recorded


def _join(note: str, more: str) -> str:
    return f"{note} {more}" if note else more


_ROOT = str(Path(__file__).resolve().parent.parent)
"""The directory that holds agent/, vlm/, tools/: frames under it are pixelpilot's own."""


def _internal(exc: BaseException) -> str:
    """An unexpected exception in one line: its type, where it was raised (the innermost frame
    of pixelpilot's own code, then the innermost frame), and its message."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if str(Path(f.filename).resolve()).startswith(_ROOT)]
    where = [f"{Path(f.filename).name}:{f.lineno}" for f in (ours[-1:] + frames[-1:])]
    at = f" at {' -> '.join(dict.fromkeys(where))}" if where else ""
    message = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}{at}: {message}"
