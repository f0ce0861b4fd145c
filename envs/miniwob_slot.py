"""MiniWoB++ episodes as jobs for parallel workers (``pixelpilot.agent.workers``).

A ``MiniWoBSlot`` owns one Xvfb display (with the window manager), one Chromium on it and a
desktop device watching it; the model is built in the slot: the DOM reference policy
(``dom-oracle``) reads that slot's own browser, any other reference goes through the
``loader`` the CLI passes in (``vlm.registry.load_model``: a scripted model is loaded afresh
for every episode, since its script is one episode's answers). A job is one (task, episode
index, seed): ``miniwob_jobs`` makes them in the order a single-process run takes them, so the
two runs give the same episodes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from pixelpilot.agent.geometry import PixelBudget
from pixelpilot.agent.jobs import Job, JobResult, Slot, SlotFactory, SlotLost
from pixelpilot.envs.miniwob_bench import (
    BenchConfig,
    EpisodeResult,
    _agent_episode,
    _direct_episode,
    _view,
    episode_folder,
)
from pixelpilot.envs.miniwob_env import MiniWoBEnv
from pixelpilot.tools.own_display import OwnDisplay

__all__ = ["ORACLE", "MiniWoBSlot", "MiniWoBSlotFactory", "episode_results", "miniwob_jobs"]

ORACLE = "dom-oracle"


def miniwob_jobs(cfg: BenchConfig) -> list[Job]:
    """One job per (task, episode), in the order ``run_bench`` runs them."""
    return [
        Job(episode_folder(task, i), "miniwob", {"task": task, "index": i, "seed": cfg.seed + i})
        for task in cfg.tasks
        for i in range(cfg.episodes)
    ]


@dataclass(frozen=True)
class MiniWoBSlotFactory(SlotFactory):
    """What every slot runs: the bench configuration, the model reference (``dom-oracle`` or
    one ``loader`` resolves), the model's pixel budget and the display size."""

    cfg: BenchConfig
    model: str = ORACLE
    loader: Callable[..., Any] | None = None
    pixels: PixelBudget | None = None
    screen: tuple[int, int] = (1920, 1080)
    kind: ClassVar[str] = "miniwob"

    def build(self, worker: int) -> MiniWoBSlot:
        return MiniWoBSlot(self, worker)


class MiniWoBSlot(Slot):
    """One display, one Chromium with MiniWoB++, one desktop device, one model."""

    def __init__(self, factory: MiniWoBSlotFactory, worker: int = 0) -> None:
        self.factory, self.worker = factory, worker
        self.vd: OwnDisplay | None = None
        self.env: MiniWoBEnv | None = None
        self.device: Any = None
        self.model: Any = None

    def open(self) -> None:
        if self.vd is None:
            self.vd = OwnDisplay(*self.factory.screen, f"pixelpilot worker {self.worker} (miniwob)")
            self.vd.start()
        self._open_env()

    def _open_env(self) -> None:
        from pixelpilot.tools.desktop import DesktopDevice

        cfg = self.factory.cfg
        assert self.vd is not None
        self.env = MiniWoBEnv(self.vd.display, episode_seconds=cfg.episode_seconds).open()
        if cfg.direct:
            return
        self.device = DesktopDevice(display=self.vd.display, **_view(cfg.observe, self.env))
        device, env = self.device, self.env
        device.boxes = lambda: env.element_boxes(device.view_origin())
        self.device.open()
        if self.factory.model == ORACLE:
            from pixelpilot.envs.dom_oracle import DomOracle

            self.model = DomOracle(self.env)
            if self.factory.pixels is not None:
                self.model.pixels = self.factory.pixels
        elif not self._scripted:
            self.model = self._load()

    @property
    def _scripted(self) -> bool:
        return self.factory.model.startswith("scripted:")

    def _load(self) -> Any:
        if self.factory.loader is None:
            raise SlotLost(f"no loader for model {self.factory.model!r}")
        pixels = {"pixels": self.factory.pixels} if self.factory.pixels is not None else {}
        return self.factory.loader(self.factory.model, **pixels)

    def run(self, job: Job, out_dir: Path) -> JobResult:
        assert self.env is not None, "open the slot first"
        cfg, spec = self.factory.cfg, job.spec
        ep = self.env.reset(spec["task"], int(spec["seed"]))
        index = int(spec["index"])
        if cfg.direct:
            res = _direct_episode(cfg, self.env, ep, index)
            return JobResult(job.id, payload=asdict(res))
        model = self._load() if self._scripted else self.model
        try:
            res = _agent_episode(
                cfg, self.env, model, self.device, ep, index, folder=out_dir / job.folder,
                extra={"worker": {"index": self.worker, "attempt": job.attempt}},
            )  # fmt: skip
        finally:
            if self._scripted:
                model.close()
        return JobResult(job.id, payload=asdict(res), trajectory=job.folder)

    def healthy(self) -> bool:
        if self.vd is None or not self.vd.running or self.env is None:
            return False
        try:
            return bool(self.env.driver.execute_script("return 1;") == 1)
        except Exception:
            return False

    def restart(self) -> None:
        if self.vd is None or not self.vd.running:
            raise SlotLost("the display died; pyautogui stays bound to it: a new worker is needed")
        self._close_env()
        self._open_env()

    def _close_env(self) -> None:
        for part in (self.device, self.model, self.env):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()
        self.device = self.model = self.env = None

    def close(self) -> None:
        self._close_env()
        if self.vd is not None:
            self.vd.stop()
            self.vd = None


def episode_results(
    results: list[JobResult], jobs: list[Job], out_dir: Path
) -> list[EpisodeResult]:
    """The bench's episodes from the jobs' results: the slot's own for those that ran, a
    zero-reward one (status timeout/crashed, the error as reason) for those that did not."""
    by_id = {j.id: j for j in jobs}
    episodes = []
    for r in results:
        spec = by_id[r.job_id].spec
        if r.status == "ok" and r.payload is not None:
            ep = EpisodeResult(**r.payload)
        else:
            ep = EpisodeResult(
                task=spec["task"], index=int(spec["index"]), seed=int(spec["seed"]),
                utterance="", reward=0.0, raw_reward=0.0, success=False, done=False,
                status=r.status, reason=r.error or r.status, steps=0, seconds=r.seconds,
                trajectory=str(out_dir / r.trajectory) if r.trajectory else None,
            )  # fmt: skip
        ep.retried, ep.worker = r.retried, r.worker
        episodes.append(ep)
    return episodes
