"""The agent loop: observe -> prompt -> generate -> parse -> check -> execute -> record.

Errors are caught by kind (see errors.py): a ModelRetry (bad output, point off-screen, policy
refusal) goes back to the model with its reason, at most ``max_retries`` times per step and is
never executed; a DeviceError or ModelError ends the run with status "error", the trajectory
intact. Recording and progress reporting are callbacks around the loop, not code inside it;
so are secrets (``secrets.Secrets``: the value goes into the action only on its way to the
device, and a recorder wrapper keeps it out of every record).

``Agent.resume(dir)`` continues a killed or budget-ended run from its last recorded step with
the history rebuilt from the record (``resume.py``), appending to the same trajectory.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import assert_never

from pixelpilot.agent.actions import (
    Action,
    AskUser,
    Click,
    Drag,
    Finish,
    Gripper,
    Home,
    Hotkey,
    LongPress,
    Move,
    MoveEffector,
    OpenApp,
    Pick,
    Place,
    Scroll,
    Swipe,
    SystemButton,
    Tap,
    TypeText,
    Wait,
)
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import Dialect, StepContext, Turn
from pixelpilot.agent.errors import DeviceError, ModelError, ModelRetry
from pixelpilot.agent.geometry import to_device
from pixelpilot.agent.secrets import Secrets
from pixelpilot.agent.trajectory import (
    Attempt,
    DirectoryRecorder,
    NullRecorder,
    Recorder,
    RunMeta,
    RunResult,
    Status,
    StepRecord,
    Trajectory,
    package_versions,
)
from pixelpilot.tools.base import Device, Observation
from pixelpilot.vlm.base import VisionModel

Policy = Callable[[Action], None]
"""Called with every parsed action before it runs; raise ActionDenied to refuse it."""
Judge = Callable[[RunResult], RunResult]
"""Called with the result when the run ends, before it is recorded: returns it with the target's
own verdict (``achieved``, ``checks``), e.g. a scenario's checks on the app's real state."""


@dataclass(frozen=True)
class Budgets:
    """Limits of one run. max_retries counts rejected answers per step."""

    max_steps: int = 15
    max_seconds: float = 300.0
    max_retries: int = 2


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
        policy: Policy | None = None,
        on_step: Callable[[StepRecord], None] | None = None,
        ask_user: Callable[[str], str] | None = None,
        meta_extra: dict | None = None,
        secrets: Secrets | Mapping[str, str] | None = None,
        judge: Judge | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.dialect = get_dialect(dialect) if isinstance(dialect, str) else dialect
        self.budgets = budgets or Budgets()
        self.secrets = Secrets.of(secrets)
        self._records = recorder is not None
        self.recorder = self.secrets.recorder(recorder or NullRecorder())
        self.policy = policy
        self.on_step = on_step
        self.ask_user = ask_user
        self.meta_extra = meta_extra or {}
        self.judge = judge

    def run(self, task: str) -> RunResult:
        """Work on ``task`` until the model finishes, a budget runs out or something fails."""
        self.recorder.start(self._meta(task))
        return self._run(task, [], [])

    def resume(self, trajectory: str | os.PathLike[str] | Trajectory) -> RunResult:
        """Continue a killed or budget-ended run from its last recorded step, with the history
        rebuilt from the record, appending to its trajectory (step numbers go on; the budgets
        count this session). With no recorder given, the run's own directory records it."""
        import pixelpilot.agent.resume as r

        traj = r.resumable(trajectory)
        r.check_fit(traj, self.dialect.name, self.device.kind)
        meta = r.resume_meta(
            traj, model=self.model.name, dialect=self.dialect.name, device=self.device.name
        )
        saved = self.recorder
        if not self._records:
            self.recorder = self.secrets.recorder(DirectoryRecorder(traj.path))
        try:
            self.recorder.resume(traj, meta)
            ended = r.ended(traj)  # killed after the model's last word: only its result is due
            if ended is not None:
                return self.recorder.finish(ended)
            return self._run(traj.meta.task, list(traj.steps), r.history_of(traj))
        finally:
            self.recorder = saved

    def _meta(self, task: str) -> RunMeta:
        device_meta: dict[str, object] = self.device.describe()
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
            secrets=list(self.secrets.names),
        )

    def _run(self, task: str, steps: list[StepRecord], history: list[Turn]) -> RunResult:
        """The loop proper, after ``steps`` (and their ``history``) of an earlier session."""
        t_start = time.monotonic()
        task = self.secrets.task_text(task)  # what the model reads; records keep the task
        first = steps[-1].index + 1 if steps else 1
        end = _EndRun("step_budget", f"the step budget ({self.budgets.max_steps}) ran out")
        try:
            for index in range(first, first + self.budgets.max_steps):
                if self._out_of_time(t_start):
                    end = self._time_up()
                    break
                step, outcome = self._step(index, task, history, t_start)
                steps.append(step)
                if self.on_step is not None:
                    self.on_step(step)
                if outcome is not None:
                    end = outcome
                    break
        except KeyboardInterrupt:
            end = _EndRun("error", "interrupted")
        result = RunResult(
            status=end.status,
            answer=end.answer,
            reason=end.reason,
            steps=steps,
            seconds=time.monotonic() - t_start,
        )
        if self.judge is not None:
            result = self.judge(result)
        return self.recorder.finish(result)

    def _out_of_time(self, t_start: float) -> bool:
        return time.monotonic() - t_start > self.budgets.max_seconds

    def _time_up(self) -> _EndRun:
        return _EndRun("time_budget", f"the time budget ({self.budgets.max_seconds:g} s) ran out")

    def _step(
        self, index: int, task: str, history: list[Turn], t_start: float
    ) -> tuple[StepRecord, _EndRun | None]:
        step = StepRecord(index=index, started_at=time.time(), geometry={})
        timings = step.timings  # filled in place as the stages run
        timings.update(dict.fromkeys(("capture", "prompt", "generate", "parse", "execute"), 0.0))
        try:
            obs = self.device.observe()
        except DeviceError as exc:
            step.error = str(exc)
            return self._record(step, None), _EndRun("error", str(exc))
        timings["capture"] = obs.seconds
        geom = obs.geometry
        step.geometry = asdict(geom)
        step.boxes = obs.extra.get("boxes")
        step.resized = resized = self.model.resized_size(geom.width, geom.height)
        ctx = StepContext(
            self.device.kind, self.device.supported, geom, resized, self.secrets.names
        )
        feedback: str | None = None
        for attempt_no in range(self.budgets.max_retries + 1):
            if attempt_no and self._out_of_time(t_start):
                return self._record(step, obs), self._time_up()
            t0 = time.perf_counter()
            prompt = self.dialect.build_prompt(task, history, obs.image, ctx, feedback)
            timings["prompt"] += time.perf_counter() - t0
            try:
                gen = self.model.generate(prompt)
            except ModelError as exc:
                step.error = str(exc)
                return self._record(step, obs), _EndRun("error", str(exc))
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
            try:
                t0 = time.perf_counter()
                action = self.dialect.parse(gen.text, ctx)
                device_action = to_device(action, geom, resized)
                if self.policy is not None:
                    self.policy(action)
                timings["parse"] += time.perf_counter() - t0
                attempt.action = action
                t0 = time.perf_counter()
                outcome, note = self._act(action, device_action, step)
                timings["execute"] = time.perf_counter() - t0
            except ModelRetry as exc:
                feedback = attempt.error = str(exc)
                attempt.action = None
                continue
            except DeviceError as exc:
                step.error = str(exc)
                return self._record(step, obs), _EndRun("error", str(exc))
            step.action, step.device_action, step.result = action, device_action, note
            history.append(Turn(raw=gen.text, action=action, image=obs.image, note=note))
            return self._record(step, obs), outcome
        reason = f"no valid action after {len(step.attempts)} answers; last error: {feedback}"
        return self._record(step, obs), _EndRun("failure", reason)

    def _act(
        self, action: Action, device_action: Action, step: StepRecord
    ) -> tuple[_EndRun | None, str]:
        """Carry out one accepted action: (how the run ends or None, the note the model is told
        about it beyond its family's own format: "" for nothing)."""
        match action:
            case Finish():
                reason = f"the model finished ({action.status})"
                return _EndRun(action.status, reason, action.answer), ""
            case AskUser():
                if self.ask_user is None:
                    reason = f"the model asked the user {action.question!r} and no one can answer"
                    return _EndRun("failure", reason), ""
                return None, f"The user answered: {self.ask_user(action.question)}"
            case (
                Click() | Move() | Drag() | Scroll() | TypeText() | Hotkey() | Wait() | Tap()
                | LongPress() | Swipe() | SystemButton() | OpenApp() | Pick() | Place()
                | Gripper() | MoveEffector() | Home()
            ):  # fmt: skip
                step.executed = self.secrets.execute(self.device, device_action)
                return None, step.executed.note  # e.g. a robot's "grasped nothing"
            case _:
                assert_never(action)

    def _record(self, step: StepRecord, obs: Observation | None) -> StepRecord:
        t0 = time.perf_counter()
        recorded = self.recorder.append(step, obs.image if obs is not None else None)
        recorded.timings["record"] = time.perf_counter() - t0
        return recorded
