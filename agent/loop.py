"""The agent loop: observe -> prompt -> generate -> parse -> check -> execute -> record.

Errors are caught by kind (see errors.py): a ModelRetry (bad output, point off-screen, policy
refusal) goes back to the model with its reason, at most ``max_retries`` times per step and is
never executed; a DeviceError or ModelError ends the run with status "error", the trajectory
intact. Recording and progress reporting are callbacks around the loop, not code inside it;
so are secrets (``secrets.Secrets``: the value goes into the action only on its way to the
device, and a recorder wrapper keeps it out of every record).

The loop is total in the model's output: whatever text a backend returns, the step ends in an
executed action, a retry with a reason or a clean end of the run (``stages.read_answer``). The
time budget is checked after every stage of a step, parsing included.

Around the loop: a ``Policy`` judges each action before it runs (``policy.py``); a
``RunControl`` (``control.py``) lets a person stop the run or take over; after each action the
screen is observed at once, how much it changed is recorded on the step, and the same action
repeated on an unchanged screen is pointed out to the model and ends the run as "stuck"
(``effects.py``). Time a person holds the run (paused, or answering a confirm question) does
not count against the time budget.

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
from pixelpilot.agent.control import STOPPED_REASON, TOOK_OVER_NOTE, RunControl
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import Dialect, StepContext, Turn
from pixelpilot.agent.effects import RepeatGuard
from pixelpilot.agent.errors import (
    DeviceError,
    ModelError,
    ModelRetry,
    StoppedByUser,
    UserTookOver,
)
from pixelpilot.agent.policy import Confirmation, ConfirmHook, Policy
from pixelpilot.agent.secrets import Secrets
from pixelpilot.agent.stages import PolicyHook, add_note, effect, police, read_answer
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

Judge = Callable[[RunResult], RunResult]
"""Called with the result when the run ends, before it is recorded: returns it with the target's
own verdict (``achieved``, ``checks``), e.g. a scenario's checks on the app's real state."""
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
        """A ``Policy`` (rules, e.g. from a YAML file) or a function that raises ActionDenied."""
        self.confirm = confirm
        """Asked before an action a policy's confirm rule matches; True lets it run."""
        self.control = control
        """Kill and pause switches a person (hotkeys) flips while the run goes on."""
        self.on_step = on_step
        self.ask_user = ask_user
        self.meta_extra = meta_extra or {}
        self.judge = judge
        self._held_s = 0.0  # this run's seconds a person held it: paused before, confirming

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
        seen: Observation | None = None  # the screen after the last action, already observed
        repeats = RepeatGuard(self.budgets.max_repeats)
        end = _EndRun("step_budget", f"the step budget ({self.budgets.max_steps}) ran out")
        saved, self.device.interlock = self.device.interlock, self.control
        self._held_s = -self.control.paused_seconds if self.control is not None else 0.0
        try:
            for index in range(first, first + self.budgets.max_steps):
                if self._out_of_time(t_start):
                    end = self._time_up()
                    break
                took_over = self._hold(history)
                if took_over is not None:
                    seen = None  # the person may have changed anything: look again
                last = index == first + self.budgets.max_steps - 1
                step, outcome, seen = self._step(
                    index, task, history, t_start, seen, repeats, took_over, last
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
        if self.judge is not None:
            result = self.judge(result)
        return self.recorder.finish(result)

    def _out_of_time(self, t_start: float) -> bool:
        held = self._held_s + (self.control.paused_seconds if self.control is not None else 0.0)
        return time.monotonic() - t_start - held > self.budgets.max_seconds

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
            history[-1] = add_note(history[-1], TOOK_OVER_NOTE)
        return waited

    def _confirm(self, c: Confirmation) -> bool:
        """The confirm hook, its time (a person reading and answering) kept off the budget."""
        assert self.confirm is not None
        t0 = time.monotonic()
        try:
            return self.confirm(c)
        finally:
            self._held_s += time.monotonic() - t0

    def _step(
        self,
        index: int,
        task: str,
        history: list[Turn],
        t_start: float,
        seen: Observation | None,
        repeats: RepeatGuard,
        took_over: float | None,
        last: bool,
    ) -> tuple[StepRecord, _EndRun | None, Observation | None]:
        """One step: (its record, how the run ends or None, the screen after its action if it
        was already observed: not after the ``last`` step the budget allows)."""
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
            ctx = StepContext(
                self.device.kind, self.device.supported, geom, resized, self.secrets.names
            )
            confirm = self._confirm if self.confirm is not None else None
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
                    limit = self.budgets.max_answer_chars
                    action, device_action = read_answer(gen.text, self.dialect, ctx, limit, attempt)
                    police(self.policy, action, device_action, self.device, confirm, attempt)
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
                if outcome is None and step.executed is not None and not last:
                    after = self.device.observe()  # the next step's screen, seen now
                    timings["capture"] += after.seconds
                    stuck = effect(step, obs, after, history, repeats)
                    outcome = _EndRun("failure", stuck) if stuck else None
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
