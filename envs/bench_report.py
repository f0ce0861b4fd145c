"""A MiniWoB bench run's results: a row per task, the JSON summary and an HTML index.

Success is MiniWoB's own: a positive raw reward (the page's reward before the time penalty).
``reward`` is the page's reward as the ``miniwob`` package reports it (positive rewards scaled
by the time left in most tasks). The invalid-output rate is rejected model answers over all
answers. SDK overhead is per step, without the model and the screen's settle waits.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from html import escape
from pathlib import Path
from typing import Any

from pixelpilot.envs.miniwob_bench import OVERHEAD_PARTS, BenchConfig, EpisodeResult

__all__ = ["TaskRow", "overhead_stats", "summarize", "write_all", "write_index", "write_json"]


@dataclass(frozen=True)
class TaskRow:
    task: str
    episodes: int
    success_rate: float
    mean_reward: float
    mean_steps: float
    seconds_per_step: float
    invalid_rate: float
    overhead_ms: float
    """Median SDK overhead per step (0 in the direct mode)."""


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def summarize(results: list[EpisodeResult]) -> list[TaskRow]:
    """One row per task, in the order tasks first appear, then an 'all' row."""
    tasks = list(dict.fromkeys(r.task for r in results))
    rows = [_row(t, [r for r in results if r.task == t]) for t in tasks]
    if len(tasks) > 1:
        rows.append(_row("all", results))
    return rows


def _row(task: str, rs: list[EpisodeResult]) -> TaskRow:
    step_s = [s for r in rs for s in r.step_seconds]
    answers = sum(r.answers for r in rs)
    return TaskRow(
        task=task,
        episodes=len(rs),
        success_rate=_mean([float(r.success) for r in rs]),
        mean_reward=_mean([r.reward for r in rs]),
        mean_steps=_mean([float(r.steps) for r in rs]),
        seconds_per_step=_mean(step_s),
        invalid_rate=sum(r.invalid for r in rs) / answers if answers else 0.0,
        overhead_ms=1000 * _median([sum(o.values()) for r in rs for o in r.overhead]),
    )


def overhead_stats(results: list[EpisodeResult]) -> dict[str, Any]:
    """SDK overhead per step over all episodes, in ms: median, p90 and max of the total, and
    the median of each part."""
    steps = [o for r in results for o in r.overhead]
    if not steps:
        return {}
    totals = sorted(1000 * sum(o.values()) for o in steps)
    p90 = totals[min(len(totals) - 1, int(0.9 * len(totals)))]
    parts = {k: 1000 * _median([o.get(k, 0.0) for o in steps]) for k in OVERHEAD_PARTS}
    return {"steps": len(totals), "median": _median(totals), "p90": p90, "max": totals[-1],
            "parts_median": parts}  # fmt: skip


def write_json(path: Path, cfg: BenchConfig, model: str, results: list[EpisodeResult]) -> Path:
    """The run's configuration, rows, overhead and every episode, as JSON."""
    config = {**asdict(cfg), "out": str(cfg.out), "model": model}
    data = {
        "config": config,
        "tasks": [asdict(r) for r in summarize(results)],
        "overhead_ms": overhead_stats(results),
        "episodes": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def write_index(
    path: Path, title: str, results: list[EpisodeResult], reports: dict[int, Path]
) -> Path:
    """An HTML page: the task table and one row per episode linking its report."""
    rows = "".join(
        f"<tr><td>{escape(r.task)}</td><td>{100 * r.success_rate:.0f}% ({r.episodes})</td>"
        f"<td>{r.mean_reward:.3f}</td>"
        f"<td>{r.mean_steps:.1f}</td><td>{r.seconds_per_step:.2f}</td>"
        f"<td>{100 * r.invalid_rate:.1f}%</td><td>{r.overhead_ms:.1f}</td></tr>"
        for r in summarize(results)
    )
    eps = []
    for n, r in enumerate(results):
        link = reports.get(n)
        name = f"{escape(r.task)} #{r.index} (seed {r.seed})"
        cell = (
            f'<a href="{escape(str(link.relative_to(path.parent)))}">{name}</a>' if link else name
        )
        mark = '<span class="ok">✓</span>' if r.success else '<span class="bad">✗</span>'
        eps.append(
            f"<tr><td>{cell}</td><td>{mark}</td><td>{r.reward:.3f}</td><td>{r.steps}</td>"
            f"<td>{escape(r.status)}</td><td>{escape(r.utterance)}</td>"
            f"<td>{escape(r.reason)}</td></tr>"
        )
    html = f"""<!doctype html>
<html lang=en><head><meta charset=utf-8>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{escape(title)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:1.5em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}.ok{{color:#080}}.bad{{color:#b00}}</style>
</head><body><h1>{escape(title)}</h1>
<table><tr><th>task</th><th>success</th><th>mean reward</th><th>steps</th><th>s/step</th>
<th>invalid</th><th>overhead ms</th></tr>{rows}</table>
<table><tr><th>episode</th><th>ok</th><th>reward</th><th>steps</th><th>agent</th>
<th>instruction</th><th>reason</th></tr>{"".join(eps)}</table></body></html>
"""
    path.write_text(html, encoding="utf-8")
    return path


def write_all(
    cfg: BenchConfig, model: str, results: list[EpisodeResult], *, reports: bool = True
) -> Path:
    """results.json, each episode's report.html (screenshots linked) and index.html in
    ``cfg.out``; returns the index's path."""
    from pixelpilot.agent.viewer import write_report

    cfg.out.mkdir(parents=True, exist_ok=True)
    pages: dict[int, Path] = {}
    if reports:
        pages = {n: write_report(r.trajectory, images="link")
                 for n, r in enumerate(results) if r.trajectory}  # fmt: skip
    write_json(cfg.out / "results.json", cfg, model, results)
    mode = "direct (Selenium)" if cfg.direct else f"{cfg.dialect}, observe {cfg.observe}"
    return write_index(cfg.out / "index.html", f"MiniWoB++ — {model} ({mode})", results, pages)
