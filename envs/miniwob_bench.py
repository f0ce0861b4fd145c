"""MiniWoB++ episodes through the real agent loop, scored by MiniWoB's own reward.

Each episode: load the task page afresh, seed it (episode ``i`` of a run with seed ``S`` uses
seed ``S + i``, whatever ran before: reproducible, and the same split over many workers), give
the agent the page's own instruction as its task, and let it act through pixels and real
pointer and keyboard events (``DesktopDevice``) until it finishes or a budget runs out; then read
the page's verdict. Every episode's trajectory is recorded.

``direct=True`` runs the DOM policy with Selenium actions instead of the agent (no pixels, no
trajectory): the reference the pixel path is compared with.

Once the page has its verdict, a policy refuses further actions (the model is told the task has
ended and should finish), and the START cover's click is disabled: acting on would otherwise
start a new episode.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pixelpilot.agent.actions import Action
from pixelpilot.agent.errors import ActionDenied, ConfigError
from pixelpilot.agent.trajectory import RunResult
from pixelpilot.envs.miniwob_env import WINDOW_CLASS, Episode, MiniWoBEnv, Outcome

__all__ = [
    "SUITES",
    "BenchConfig",
    "EpisodeResult",
    "Observe",
    "episode_folder",
    "overhead_parts",
    "resolve_tasks",
    "run_bench",
]

Observe = Literal["task", "window", "screen"]

DEMO_TASKS = ("click-test", "click-button", "focus-text", "enter-text", "click-checkboxes")
SUITES = ("demo", "oracle", "all")
"""demo: five simple tasks; oracle: every task the DOM reference policy solves; all: every
MiniWoB++ task the installed package registers."""


def resolve_tasks(tasks: str | None, suite: str | None) -> tuple[str, ...]:
    """The task names of ``--tasks a,b`` or ``--suite NAME`` (default: the demo suite);
    ConfigError naming what is unknown."""
    from pixelpilot.envs.dom_solvers import SOLVERS
    from pixelpilot.envs.miniwob_env import all_tasks

    if tasks is not None and suite is not None:
        raise ConfigError("give --tasks or --suite, not both")
    known = all_tasks()
    if tasks is not None:
        names = tuple(dict.fromkeys(t.strip() for t in tasks.split(",") if t.strip()))
        unknown = [t for t in names if t not in known]
        if unknown or not names:
            raise ConfigError(
                f"unknown MiniWoB task {', '.join(unknown) or repr(tasks)}; "
                "see 'pixelpilot bench miniwob --list'"
            )
        return names
    suite = suite or "demo"
    if suite == "demo":
        return DEMO_TASKS
    if suite == "oracle":
        return tuple(sorted(SOLVERS))
    if suite == "all":
        return tuple(known)
    raise ConfigError(f"unknown suite {suite!r}; use one of: {', '.join(SUITES)}")


@dataclass(frozen=True)
class BenchConfig:
    """What to run. ``observe``: what the model sees: the 160x210 task area, the Chromium
    window, or the whole screen. ``episode_seconds`` replaces the tasks' own time limits."""

    tasks: tuple[str, ...]
    dialect: str
    episodes: int = 1
    seed: int = 0
    observe: Observe = "task"
    direct: bool = False
    max_steps: int = 20
    max_seconds: float = 120.0
    episode_seconds: float | None = None
    out: Path = Path("runs/miniwob")

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"--episodes must be at least 1, got {self.episodes}")
        if not self.tasks:
            raise ConfigError("no tasks to run")


@dataclass
class EpisodeResult:
    """One episode: the page's verdict and what the agent did."""

    task: str
    index: int
    seed: int
    utterance: str
    reward: float
    raw_reward: float
    success: bool
    done: bool
    status: str
    """The agent's run status (success, failure, step_budget, ...); 'direct' in the direct mode."""
    reason: str
    steps: int
    seconds: float
    answers: int = 0
    invalid: int = 0
    step_seconds: list[float] = field(default_factory=list)
    overhead: list[dict[str, float]] = field(default_factory=list)
    """Per step, seconds of SDK work by part (see ``overhead_parts``)."""
    trajectory: str | None = None
    retried: bool = False
    """Run a second time because its environment died the first time (parallel runs)."""
    worker: int | None = None
    """The worker that ran it (parallel runs)."""


OVERHEAD_PARTS = ("capture", "image", "prompt", "parse", "execute", "record")


def overhead_parts(step: Any, waited: dict[str, float], env_check: float = 0.0) -> dict[str, float]:
    """A step's SDK overhead in seconds, by part: everything but the model and the waits for
    the screen to settle (``DesktopDevice.waited``). capture: the grab that became the
    observation; image: turning it into an image; execute: input events, without typing's
    pauses for the app to draw; ``env_check``: the benchmark's own reading of the page, taken out."""
    t = step.timings
    image = waited.get("image", 0.0)
    return {
        "capture": max(0.0, t.get("capture", 0.0) - waited.get("observe", 0.0) - image),
        "image": image,
        "prompt": t.get("prompt", 0.0),
        "parse": max(0.0, t.get("parse", 0.0) - env_check),
        "execute": t.get("execute", 0.0) - (waited.get("execute", 0.0) if step.executed else 0.0),
        "record": t.get("record", 0.0),
    }


class EndedPolicy:
    """Refuses acting once the page has its verdict (control actions stay allowed).
    ``seconds`` is how long the last check took: reading the page is the benchmark's cost,
    not the SDK's, and is taken out of the overhead."""

    def __init__(self, env: MiniWoBEnv) -> None:
        self.env = env
        self.seconds = 0.0

    def __call__(self, action: Action) -> None:
        if action.kind in ("finish", "ask_user", "wait"):
            self.seconds = 0.0
            return
        t0 = time.perf_counter()
        done = self.env.outcome().done
        self.seconds = time.perf_counter() - t0
        if done:
            raise ActionDenied("the task has ended; nothing more can be done: finish")


def run_bench(
    cfg: BenchConfig,
    env: MiniWoBEnv,
    model: Any = None,
    *,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    on_start: Callable[[str, int], None] | None = None,
) -> list[EpisodeResult]:
    """Run every (task, episode) of ``cfg`` on the open ``env`` with ``model`` (ignored when
    ``cfg.direct``); returns the episodes in order."""
    results: list[EpisodeResult] = []
    with _runner(cfg, env, model) as run_one:
        for task in cfg.tasks:
            for i in range(cfg.episodes):
                if on_start is not None:
                    on_start(task, i)
                ep = env.reset(task, cfg.seed + i)
                res = run_one(ep, i)
                results.append(res)
                if on_episode is not None:
                    on_episode(res)
    return results


@contextmanager
def _runner(
    cfg: BenchConfig, env: MiniWoBEnv, model: Any
) -> Iterator[Callable[[Episode, int], EpisodeResult]]:
    if cfg.direct:
        yield lambda ep, i: _direct_episode(cfg, env, ep, i)
        return
    from pixelpilot.tools.desktop import DesktopDevice

    with DesktopDevice(display=env.display, **_view(cfg.observe, env)) as device:
        device.boxes = lambda: env.element_boxes(device.view_origin())
        yield lambda ep, i: _agent_episode(cfg, env, model, device, ep, i)


def _view(observe: Observe, env: MiniWoBEnv) -> dict[str, Any]:
    """DesktopDevice options that make it observe the task area, the window or the screen."""
    if observe == "screen":
        return {}
    if observe == "task":
        return {"region": env.task_rect()}
    return {"window": f"class={WINDOW_CLASS}"}


def episode_folder(task: str, index: int) -> str:
    """An episode's trajectory folder under the run's ``episodes/`` directory."""
    return f"{task}/{index:03d}"


def _agent_episode(
    cfg: BenchConfig,
    env: MiniWoBEnv,
    model: Any,
    device: Any,
    ep: Episode,
    i: int,
    folder: Path | None = None,
    extra: dict[str, Any] | None = None,
) -> EpisodeResult:
    from pixelpilot.agent.loop import Agent, Budgets
    from pixelpilot.agent.trajectory import DirectoryRecorder

    folder = folder or cfg.out / "episodes" / episode_folder(ep.task, i)
    overhead: list[dict[str, float]] = []
    waited = getattr(device, "waited", {})
    policy = EndedPolicy(env)

    def note(step: Any) -> None:
        overhead.append(overhead_parts(step, waited, policy.seconds))

    agent = Agent(
        model=model,
        device=device,
        dialect=cfg.dialect,
        budgets=Budgets(max_steps=cfg.max_steps, max_seconds=cfg.max_seconds),
        recorder=DirectoryRecorder(folder),
        policy=policy,
        on_step=note,
        meta_extra={
            "miniwob": {"task": ep.task, "seed": ep.seed, "observe": cfg.observe},
            **(extra or {}),
        },
    )
    result = agent.run(ep.utterance)
    outcome = env.outcome()
    res = _result(ep, i, outcome, result.status, result.reason, result.seconds)
    res.steps = len(result.steps)
    res.answers = sum(len(s.attempts) for s in result.steps)
    res.invalid = sum(s.retries for s in result.steps)
    res.step_seconds = [_step_seconds(s) for s in result.steps]
    res.overhead = overhead
    res.trajectory = str(folder)
    _write_outcome(folder, ep, outcome, result)
    return res


def _step_seconds(step: Any) -> float:
    return float(sum(v for k, v in step.timings.items() if k in _STAGES))


_STAGES = ("capture", "prompt", "generate", "parse", "execute", "record")


def _write_outcome(folder: Path, ep: Episode, outcome: Outcome, result: RunResult) -> None:
    import json

    data = {"episode": asdict(ep), "outcome": asdict(outcome), "success": outcome.success,
            "agent_status": result.status}  # fmt: skip
    (folder / "miniwob.json").write_text(json.dumps(data, indent=2), encoding="utf-8")


def _direct_episode(cfg: BenchConfig, env: MiniWoBEnv, ep: Episode, i: int) -> EpisodeResult:
    from pixelpilot.envs.dom_oracle import DomPolicy, SeleniumActor
    from pixelpilot.envs.dom_page import Done, OracleStuck

    policy, actor = DomPolicy(env), SeleniumActor(env.driver)
    t0, steps, reason = time.monotonic(), 0, ""
    step_s: list[float] = []
    while steps < cfg.max_steps:
        t1 = time.monotonic()
        try:
            intent = policy.next()
        except OracleStuck as exc:
            reason = f"stuck: {exc}"
            break
        if isinstance(intent, Done):
            reason = "the page has its verdict"
            break
        actor.perform(intent)
        steps += 1
        step_s.append(time.monotonic() - t1)
    else:
        reason = f"the step budget ({cfg.max_steps}) ran out"
    res = _result(ep, i, env.outcome(), "direct", reason, time.monotonic() - t0)
    res.steps, res.step_seconds = steps, step_s
    return res


def _result(
    ep: Episode, i: int, outcome: Outcome, status: str, reason: str, seconds: float
) -> EpisodeResult:
    return EpisodeResult(
        task=ep.task, index=i, seed=ep.seed, utterance=ep.utterance,
        reward=outcome.reward if outcome.done else 0.0,
        raw_reward=outcome.raw_reward if outcome.done else 0.0,
        success=outcome.success, done=outcome.done, status=status,
        reason=reason if outcome.reason is None else f"{reason}; page: {outcome.reason}",
        steps=0, seconds=seconds,
    )  # fmt: skip


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
