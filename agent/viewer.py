"""A trajectory as one self-contained HTML report: what the run saw, asked, did and how long it took.

``write_report(traj_dir)`` writes ``report.html`` with a run summary, a step timeline and, per
step, the screenshot with the action drawn where it landed (an SVG overlay whose viewBox is the
screenshot's pixels, so it scales with the image), every model answer (accepted or rejected with
the reason sent back), the parsed action, the executed commands, time per stage and token
counts. Screenshots are embedded as data URLs (one file to attach to an issue) or linked
beside it. Runs killed mid-way (no result.json, a half-written last line, a missing screenshot)
render with what exists.

Model text is untrusted: every string is HTML-escaped, and a Content-Security-Policy allows
only the report's own script (by hash), so even a missed escape could not run code.
``report.html#solo-N`` shows step N's screenshot alone at (0, 0), at its natural size or scaled
down to the window's width, for tests and screenshots.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from html import escape
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from pixelpilot.agent.overlay import pointer_after, step_action, step_marks, svg
from pixelpilot.agent.trajectory import StepRecord, Trajectory, load_trajectory

STAGES = ("capture", "prompt", "generate", "parse", "execute")

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1400px;
padding:16px;color:#1b1b1b;background:#f6f6f4}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:0 0 8px}
table{border-collapse:collapse}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
th{font-weight:600;color:#555}.ok{color:#1b7d36}.bad{color:#c62828}.warn{color:#b26a00}
nav.timeline{display:flex;flex-wrap:wrap;gap:6px;margin:12px 0 18px}
nav.timeline a{padding:3px 8px;border-radius:10px;background:#e3e7ee;text-decoration:none;
color:#1b1b1b;font-size:12px}nav.timeline a.bad{background:#ffd9d9}
nav.timeline a.warn{background:#ffeccc}
section.step{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:16px;
background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px;margin-bottom:16px}
section.step>h2{grid-column:1/-1}
.shot{position:relative;width:100%;line-height:0;border:1px solid #ccc}
.shot img{width:100%;height:100%;display:block}
.shot svg.overlay{position:absolute;left:0;top:0;width:100%;height:100%;overflow:visible}
.missing{display:flex;align-items:center;justify-content:center;background:#eee;
color:#777;line-height:1.4;width:100%;height:100%}
pre{white-space:pre-wrap;word-break:break-word;background:#f3f3f3;padding:6px;margin:4px 0;
font:12px/1.4 ui-monospace,'DejaVu Sans Mono',monospace;max-height:300px;overflow:auto}
details{margin:4px 0}summary{cursor:pointer}
body.solo{margin:0;padding:0;max-width:none;background:#fff;overflow:hidden}
body.solo>*{display:none}body.solo>section.solo-step{display:block;padding:0;margin:0;border:0}
body.solo>section.solo-step>*{display:none}
body.solo>section.solo-step>.shot{display:block;position:fixed;left:0;top:0;
width:min(var(--w),100vw);height:auto;border:0}
"""

_SCRIPT = (
    "(function(){var m=/^#solo-(\\d+)$/.exec(location.hash);if(!m)return;"
    "var s=document.getElementById('step-'+m[1]);if(!s)return;"
    "s.classList.add('solo-step');document.body.classList.add('solo');})();"
)


def write_report(
    traj_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    images: Literal["embed", "link"] = "embed",
) -> Path:
    """Write the HTML report of the run in ``traj_dir`` (default ``traj_dir/report.html``).

    ``images='embed'`` puts the screenshots in the file as data URLs; ``'link'`` refers to the
    PNGs beside it by relative path (smaller, but the report needs the run directory).
    """
    traj = load_trajectory(traj_dir)
    dest = Path(out) if out is not None else Path(traj_dir) / "report.html"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(render(traj, images=images, base=dest.parent), encoding="utf-8")
    return dest


def render(traj: Trajectory, *, images: str = "embed", base: Path | None = None) -> str:
    """The report's HTML text for ``traj``."""
    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = (
        "default-src 'none'; img-src data: file: 'self'; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{script_hash}'; base-uri 'none'; form-action 'none'"
    )
    title = f"pixelpilot run: {traj.meta.task}"
    parts = [
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>",
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        _summary(traj),
        _timeline(traj.steps),
    ]
    pointer = None
    for step in traj.steps:
        parts.append(_step(traj, step, pointer, images, base))
        pointer = pointer_after(step_action(step), pointer)
    parts.append(f"<script>{_SCRIPT}</script></body></html>\n")
    return "".join(parts)


# -- summary -------------------------------------------------------------------------------------
def stage_totals(steps: list[StepRecord]) -> dict[str, float]:
    """Seconds spent per stage over all steps."""
    return {s: sum(step.timings.get(s, 0.0) for step in steps) for s in STAGES}


def _summary(traj: Trajectory) -> str:
    meta, res = traj.meta, traj.result or {}
    status = traj.status
    if traj.result is None:
        status_html = '<span class="warn">incomplete</span> (no result.json: the run was killed)'
    else:
        cls = "ok" if status == "success" else "bad"
        status_html = f'<span class="{cls}">{escape(status)}</span>'
    if traj.truncated:
        status_html += ' <span class="warn">(last step line cut off)</span>'
    totals = stage_totals(traj.steps)
    total_s = res.get("seconds")
    if not isinstance(total_s, (int, float)):
        total_s = sum(sum(s.timings.values()) for s in traj.steps)
    retries = sum(s.retries for s in traj.steps)
    dev = meta.device
    rows = [
        ("task", escape(meta.task)),
        ("status", status_html),
        ("reason", escape(str(res.get("reason", "")))),
        ("achieved", _achieved(res)),
        ("answer", escape(str(res.get("answer", "")))),
        ("steps", f"{len(traj.steps)} ({retries} rejected answers)"),
        ("total time", f"{total_s:.2f} s"),
        ("per stage", escape(", ".join(f"{k} {v:.3f} s" for k, v in totals.items()))),
        ("model", escape(meta.model)),
        ("dialect", escape(meta.dialect)),
        ("device", escape(f"{dev.get('name', '?')} ({dev.get('kind', '?')}) "
                          f"{dev.get('width', '?')}x{dev.get('height', '?')} "
                          f"scale {dev.get('scale', 1)}")),
        ("view", escape(view_text(dev.get("view")))),
        ("started", escape(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(meta.started_at)))),
        ("format", str(meta.format_version)),
    ]  # fmt: skip
    if meta.extra.get("scenario"):
        rows.append(("scenario", escape(str(meta.extra["scenario"]))))
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows if v)
    return f'<header><h1>{escape(Path(traj.path).name)}</h1><table class="summary">{body}</table></header>'


def _achieved(res: dict[str, Any]) -> str:
    """Whether the task was achieved by the target's real state (its checks), apart from the
    model's claim; "" when nothing judged it."""
    checks = res.get("checks") or []
    if not checks:
        return ""
    held = sum(bool(c.get("passed")) for c in checks)
    if res.get("achieved") is True:
        head = f'<span class="ok">yes</span> ({held} of {len(checks)} checks hold)'
    elif res.get("achieved") is False:
        head = f'<span class="bad">no</span> ({held} of {len(checks)} checks hold)'
    else:
        head = '<span class="warn">not judged</span>'
    failed = "".join(
        f"<br>✗ {escape(str(c.get('line', '')))}" for c in checks if not c.get("passed")
    )
    return head + failed


def view_text(view: Any) -> str:
    """What a desktop run observed (run.json ``device.view``): "" for the whole screen."""
    if not isinstance(view, dict):
        return ""
    if "region" in view:
        x, y, w, h = view["region"]
        return f"region {w}x{h} at ({x}, {y}) of the screen"
    if "window" in view:
        found = f" — {view['title']!r}, {view['id']}" if view.get("id") else ""
        return f"window {view['window']!r}{found} (its client area)"
    return ""


def _timeline(steps: list[StepRecord]) -> str:
    chips = []
    for s in steps:
        action = step_action(s)
        warn = s.retries or s.screen_change == 0 or s.took_over_s is not None
        cls = "bad" if s.error or action is None else ("warn" if warn else "")
        label = action.kind if action is not None else ("error" if s.error else "invalid")
        chips.append(f'<a class="{cls}" href="#step-{s.index}">{s.index} {escape(label)}</a>')
    return '<nav class="timeline">' + "".join(chips) + "</nav>"


# -- one step ------------------------------------------------------------------------------------
def describe(action: Any) -> str:
    """A short plain-text description of an action with its screen points."""
    if action is None:
        return "no action"
    bits = [action.kind]
    data = action.model_dump(exclude={"kind"}, exclude_defaults=True)
    if action.kind == "finish":
        data = {"status": action.status, **data}
    for name, value in data.items():
        if isinstance(value, dict) and "space" in value:
            bits.append(f"{name} ({value['x']:g}, {value['y']:g})")
        elif value not in (None, "", []):
            bits.append(f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}")
    return " ".join(bits)


def _step(traj: Trajectory, step: StepRecord, pointer: Any, images: str, base: Path | None) -> str:
    action = step_action(step)
    geom = step.geometry or traj.meta.device
    path = traj.screenshot_path(step)
    size = (int(geom.get("width") or 0), int(geom.get("height") or 0))
    if path is not None:
        with Image.open(path) as im:
            img_size = im.size
        if not all(size):
            size = img_size
    head = f"Step {step.index}: {describe(action)}"
    origin = step.geometry.get("origin") if step.geometry else None
    if origin and view_text(traj.meta.device.get("view")):  # where the window or region was
        head += f" (view at {origin[0]:g}, {origin[1]:g})"
    if step.retries:
        head += f" — {step.retries} rejected"
    w, h = size if all(size) else (16, 10)
    shot = [f'<div class="shot" style="aspect-ratio:{w}/{h};--w:{w}px">']
    if path is not None:
        shot.append(f'<img alt="step {step.index} screenshot" src="{_src(path, images, base)}">')
    else:
        shot.append('<div class="missing">screenshot not written (the run ended first)</div>')
    if all(size):
        shot.append(svg(step_marks(step, (w, h), pointer), (w, h)))
    shot.append("</div>")
    return (
        f'<section class="step" id="step-{step.index}"><h2>{escape(head)}</h2>'
        + "".join(shot)
        + f'<div class="details">{_details(step)}</div></section>'
    )


def _src(path: Path, images: str, base: Path | None) -> str:
    if images == "link":
        rel = os.path.relpath(path, base) if base is not None else str(path)
        return escape(Path(rel).as_posix())
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def effect(step: StepRecord) -> str:
    """What the action did to the screen, in words ("" when it was not measured)."""
    if step.screen_change is None:
        return ""
    if step.screen_change == 0:
        return "the screen did not change after this action"
    pct = step.screen_change * 100
    return f"the screen changed after this action: {pct:.2f}% of its pixels"


def _details(step: StepRecord) -> str:
    out = []
    if step.took_over_s is not None:
        out.append(f'<p class="warn">a person took over for {step.took_over_s:.1f} s before '
                   "this step</p>")  # fmt: skip
    if step.error:
        out.append(f'<p class="bad">error: {escape(step.error)}</p>')
    t = step.timings
    cells = "".join(f"<td>{t.get(k, 0) * 1000:.1f} ms</td>" for k in STAGES)
    heads = "".join(f"<th>{k}</th>" for k in STAGES)
    out.append(f'<table class="timings"><tr>{heads}</tr><tr>{cells}</tr></table>')
    for n, a in enumerate(step.attempts, 1):
        verdict = (
            '<span class="ok">accepted</span>'
            if a.error is None and a.action is not None
            else f'<span class="bad">rejected</span>: {escape(a.error or "")}'
        )
        tokens = ", ".join(
            f"{name} {value}"
            for name, value in (
                ("visual tokens", a.visual_tokens),
                ("prompt tokens", a.prompt_tokens),
                ("output tokens", a.output_tokens),
            )
            if value is not None
        )
        meta = f"generate {a.generate_s * 1000:.1f} ms" + (f", {tokens}" if tokens else "")
        if a.parse_s is not None:
            meta += f", parse {a.parse_s * 1000:.2f} ms"
        internal = ""
        if a.internal:
            internal = f'<div class="bad">internal parser error: {escape(a.internal)}</div>'
        parsed = ""
        if a.action is not None:
            parsed = f"<div>parsed: <code>{escape(describe(a.action))}</code> ({escape(_space(a.action))})</div>"
        out.append(
            f"<details open><summary>answer {n}/{len(step.attempts)}: {verdict} "
            f"<small>({escape(meta)})</small></summary>"
            f'<pre class="raw">{escape(a.raw)}</pre>{parsed}{internal}</details>'
        )
    if step.device_action is not None:
        out.append(f"<div>on screen: <code>{escape(describe(step.device_action))}</code></div>")
    if step.executed is not None:
        cmds = "\n".join(json.dumps(c, ensure_ascii=False) for c in step.executed.commands)
        note = f" — {escape(step.executed.note)}" if step.executed.note else ""
        out.append(
            f"<div>executed in {step.executed.seconds * 1000:.1f} ms{note}:</div>"
            f'<pre class="commands">{escape(cmds)}</pre>'
        )
    if effect(step):
        cls = "warn" if step.screen_change == 0 else "ok"
        out.append(f'<div class="effect {cls}">{escape(effect(step))}</div>')
    if step.result:
        out.append(f"<div>told the model: <q>{escape(step.result)}</q></div>")
    return "".join(out)


def _space(action: Any) -> str:
    from pixelpilot.agent.actions import points

    spaces = {p.space for p in points(action)}
    return ", ".join(sorted(spaces)) or "no points"
