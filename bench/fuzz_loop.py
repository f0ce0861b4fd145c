"""Fuzz the agent loop with adversarial model outputs, in every dialect, through the real entry
points: ``Agent.run`` with a ``ScriptedModel`` on a dry-run device (the real desktop and
Android planners, nothing performed), recorded by a real ``DirectoryRecorder``.

    python bench/fuzz_loop.py [--outputs 100000] [--seed 1] [--jobs 2] [--save-crashes tests/data/fuzz_crashes.jsonl]

Outputs come from generators (``GENERATORS``): valid answers of the dialect (``format`` of
random actions), their mutations (characters and grammar tokens inserted, deleted, repeated;
numbers replaced by 309-digit, negative, NaN, 1e999 ones), other dialects' answers, deep nesting
(993-50,000 levels) inside each dialect's envelope, long repetitions (``<|box_start|>`` x 8192),
lone surrogates, control characters, random Unicode and 1 MB texts.

Reported per dialect: outputs, crashes (an exception escaping ``Agent.run``, a run without
result.json, a step lost: must be 0), executed invalid actions (an executed action that does
not re-validate, lies off screen or is not the parse of its answer: must be 0), internal errors
(exceptions a parser raised that the loop turned into retries: bugs for the parsers) and parse
time p50/p99/max as the loop recorded it, and "retimed": the 20 slowest of those answers parsed
again alone, best of 5, which separates a parser's own cost from the scheduling noise of a loaded
machine. Answers the loop refused unread (longer than ``Budgets.max_answer_chars``) are also
parsed directly, to report the parsers' own time on them.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import math
import random
import statistics
import string
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelpilot.agent.actions import (
    ACTION_ADAPTER,
    BY_KIND,
    Point,
    points,
)
from pixelpilot.agent.dialects import DIALECTS, get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.geometry import from_screen, to_device
from pixelpilot.agent.keys import KNOWN_KEYS
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import DirectoryRecorder, NullRecorder, Recorder, load_trajectory
from pixelpilot.tools.dryrun import DryRunDesktop, DryRunDevice, DryRunPhone
from pixelpilot.vlm.scripted import ScriptedModel

RUN_OUTPUTS = 200
"""Outputs handed to one run's scripted model (a run ends sooner on finish or failure)."""
GRAMMAR_TOKENS = [
    "✿FUNCTION✿", "✿ARGS✿", "✿RESULT✿", "✿RETURN✿", ": ", "<tool_call>", "</tool_call>",
    "{", "}", "[", "]", '"', "'", "(", ")", ",", ":", "=", "\\", "\n", "<|box_start|>",
    "<|box_end|>", "<point>", "</point>", "<|im_end|>", "<|endoftext|>", "Thought:", "Action:",
    "thoughts:", "actions:", "CLICK", "TYPE", "SCROLL", "'action'", "'position'", "'value'",
    '"name"', '"arguments"', '"action"', '"coordinate"', "computer_use", "mobile_use", "finished",
    "start_box=", "content=", "None", "null", "true", "```", "```json", "<secret>", "</secret>",
]  # fmt: skip
NUMBERS = ["9" * 309, "-1", "-0", "1e999", "1e309", "NaN", "Infinity", "-Infinity", "0x10",
           "1_000", "1.5e3", "00012", "+5", "5.", ".5", "1" * 5000, "0" * 400 + "1", "2**64"]  # fmt: skip
CONTROL = [chr(c) for c in range(32) if c not in (9, 10)] + ["\x7f", "\u2028", "\u2029", "\ufeff",
           "\u202e", "\u200b", "\x85", "\u0000"]  # fmt: skip
SURROGATES = ["\ud800", "\udfff", "\udc00", "\ud83d", "\ud800\ud800"]


@dataclass
class Context:
    """One dialect on one kind of dry-run device."""

    dialect: str
    device: DryRunDevice
    ctx: StepContext


def contexts(dialect: str) -> list[Context]:
    """The dialect on a dry-run desktop and (where it offers mobile actions) a dry-run phone."""
    out = []
    # small screens: the recorder encodes one PNG per step, and the size does not matter here
    for dev in (DryRunDesktop(width=320, height=200), DryRunPhone(width=180, height=400)):
        dev.open()
        g = dev.geometry
        resized = ScriptedModel([]).resized_size(g.width, g.height)
        out.append(Context(dialect, dev, StepContext(dev.kind, dev.supported, g, resized)))
    return out


# -- random valid actions ----------------------------------------------------------------------
def _text(r: random.Random) -> str:
    alphabets = [string.ascii_letters + " ", "Zoë — 東京 ✓ \"'\\$(){}<>", string.printable[:94]]
    return "".join(r.choice(r.choice(alphabets)) for _ in range(r.randint(1, 40)))


def random_action(r: random.Random, c: Context) -> Any:
    """A random valid action of a kind the device supports, points in the dialect's space."""
    g = c.ctx.geometry
    space = get_dialect(c.dialect).space
    kind = r.choice(sorted(c.device.supported))

    def pt() -> Point:
        return from_screen(r.randrange(g.width), r.randrange(g.height), space, g, c.ctx.resized)

    fields: dict[str, Any] = {
        "click": lambda: {"point": pt(), "button": r.choice(["left", "right"]),
                          "count": r.choice([1, 1, 2])},
        "move": lambda: {"point": pt()},
        "drag": lambda: {"start": pt(), "end": pt()},
        "scroll": lambda: {"direction": r.choice(["up", "down", "left", "right"]),
                           "amount": r.randint(1, 10), "point": pt()},
        "type": lambda: {"text": _text(r)},
        "hotkey": lambda: {"keys": r.sample(sorted(k for k in KNOWN_KEYS if len(k) > 1),
                                            r.randint(1, 3))},
        "wait": lambda: {"seconds": 0},
        "tap": lambda: {"point": pt()},
        "long_press": lambda: {"point": pt(), "seconds": 1.0},
        "swipe": lambda: {"start": pt(), "end": pt()},
        "system_button": lambda: {"button": r.choice(["back", "home", "enter"])},
        "open_app": lambda: {"app": r.choice(["settings", "chrome", "com.example.app"])},
        "finish": lambda: {"status": r.choice(["success", "failure"]), "answer": _text(r)},
        "ask_user": lambda: {"question": _text(r)},
    }  # fmt: skip
    return BY_KIND[kind].model_validate({"kind": kind, **fields[kind]()})


def valid_output(r: random.Random, c: Context, tries: int = 20) -> str:
    """The dialect's own text for a random action it can express."""
    d = get_dialect(c.dialect)
    for _ in range(tries):
        action = random_action(r, c)
        if action.kind in ("ask_user",):
            continue  # the dry run has no one to answer
        try:
            return d.format(action, c.ctx)
        except (ValueError, KeyError):
            continue
    return d.format(BY_KIND["wait"].model_validate({"kind": "wait", "seconds": 0}), c.ctx)


# -- generators ----------------------------------------------------------------------------------
def _mutate(r: random.Random, text: str) -> str:
    for _ in range(r.randint(1, 4)):
        op = r.randrange(8)
        i = r.randrange(len(text) + 1)
        j = min(len(text), i + r.randint(1, 12))
        if op == 0 and text:
            text = text[:i] + text[j:]
        elif op == 1:
            text = text[:i] + r.choice(GRAMMAR_TOKENS) + text[i:]
        elif op == 2:
            text = text[:i] + chr(r.randrange(32, 0x3000)) + text[i:]
        elif op == 3:
            text = text[:i] + text[i:j] * r.randint(2, 50) + text[j:]
        elif op == 4:
            text = text[:i]
        elif op == 5:
            digits = [k for k, ch in enumerate(text) if ch.isdigit()]
            if digits:
                k = r.choice(digits)
                text = text[:k] + r.choice(NUMBERS) + text[k + 1 :]
        elif op == 6 and text:
            k = r.randrange(len(text))
            text = text[:k] + text[k].swapcase() + text[k + 1 :]
        else:
            text = text[:i] + r.choice(CONTROL) + text[i:]
    return text


def _nest(r: random.Random, c: Context) -> str:
    depth = r.choice([993, 1000, 3000, 50_000])
    opener, closer = r.choice([("[", "]"), ('{"a":', "}"), ("(", ")"), ("{'a':", "}"),
                               ("[[", "]]"), ("<point>", "</point>")])  # fmt: skip
    body = opener * depth + "1" + closer * r.choice([0, depth])
    base = valid_output(r, c)
    cut = base.find("{") if "{" in base else base.find("(")
    if cut < 0:
        cut = len(base)
    return base[:cut] + body + base[cut:] if r.random() < 0.7 else body


def _repeat(r: random.Random, c: Context) -> str:
    token = r.choice(GRAMMAR_TOKENS + ["<|box_start|>"] * 6 + ["(1,2)", "x", " "])
    times = r.choice([1000, 8192, 20_000])
    text = token * times
    return valid_output(r, c) + text if r.random() < 0.3 else text


def _surrogate(r: random.Random, c: Context) -> str:
    base = valid_output(r, c)
    i = r.randrange(len(base) + 1)
    return base[:i] + r.choice(SURROGATES) + base[i:]


def _control(r: random.Random, c: Context) -> str:
    base = valid_output(r, c)
    for _ in range(r.randint(1, 5)):
        i = r.randrange(len(base) + 1)
        base = base[:i] + r.choice(CONTROL) + base[i:]
    return base


def _unicode(r: random.Random, c: Context) -> str:
    n = r.randint(0, 300)
    return "".join(chr(r.choice([r.randrange(32, 127), r.randrange(0x80, 0x30000)])) for _ in range(n))


def _huge(r: random.Random, c: Context) -> str:
    size = 1 << 20
    base = valid_output(r, c)
    kind = r.randrange(3)
    if kind == 0:
        return base + "x" * size
    if kind == 1:
        return ("a " * (size // 2))[:size] + base
    return base[: len(base) // 2] + "9" * size + base[len(base) // 2 :]


def _other_dialect(r: random.Random, c: Context) -> str:
    other = Context(r.choice(DIALECTS), c.device, c.ctx)
    return valid_output(r, other)


def _empty(r: random.Random, c: Context) -> str:
    return r.choice(["", " ", "\n\n", "\t", "null", "{}", "[]", "()", "None", "✿FUNCTION✿:"])


GENERATORS: dict[str, tuple[float, Callable[[random.Random, Context], str]]] = {
    "valid": (0.10, valid_output),
    "mutated": (0.45, lambda r, c: _mutate(r, valid_output(r, c))),
    "other_dialect": (0.05, _other_dialect),
    "nested": (0.06, _nest),
    "repeated": (0.04, _repeat),
    "surrogate": (0.08, _surrogate),
    "control": (0.08, _control),
    "unicode": (0.08, _unicode),
    "empty": (0.0195, _empty),
    "huge": (0.0005, _huge),
}
"""name -> (share of outputs, generator)."""


def outputs(r: random.Random, c: Context, n: int) -> Iterator[tuple[str, str]]:
    """``n`` (generator name, output) pairs."""
    names = list(GENERATORS)
    weights = [GENERATORS[k][0] for k in names]
    for name in r.choices(names, weights, k=n):
        yield name, GENERATORS[name][1](r, c)


# -- running -------------------------------------------------------------------------------------
@dataclass
class Report:
    """What one dialect's fuzzing found."""

    dialect: str
    outputs: int = 0
    runs: int = 0
    crashes: list[dict[str, Any]] = field(default_factory=list)
    invalid_executed: list[dict[str, Any]] = field(default_factory=list)
    internal: dict[str, dict[str, Any]] = field(default_factory=dict)
    """signature -> {"count", "raw" (shortest), "generator", "device"}."""
    parse_s: list[float] = field(default_factory=list)
    slowest: tuple[float, str, str] = (0.0, "", "")
    top: list[tuple[float, int, str, str]] = field(default_factory=list)
    """The RETIME slowest parses as the loop timed them: (seconds, n, answer, device kind)."""
    retimed_max_s: float = 0.0
    """The slowest of those parsed again alone (best of 5): the parser's own cost, without the
    scheduling noise a loaded machine adds to single timings."""
    unread: int = 0
    direct_max_s: float = 0.0
    direct_timeouts: int = 0
    executed: int = 0
    ends: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    """Reasons of runs that ended in error other than the script running out (a device error
    from a planner would show here)."""


def _check_executed(c: Context, run: Any, report: Report) -> None:
    d = get_dialect(c.dialect)
    g = c.ctx.geometry
    executed = list(c.device.executed)
    c.device.executed.clear()
    steps = [s for s in run.steps if s.executed is not None and s.executed.action.kind != "wait"]
    if len(steps) != len(executed):
        report.invalid_executed.append({"why": "executed actions differ from recorded steps"})
    for step, done in zip(steps, executed, strict=False):
        report.executed += 1
        raw = next(a.raw for a in step.attempts if a.action is not None and a.error is None)
        problems = []
        try:
            ACTION_ADAPTER.validate_python(done.action.model_dump())
        except Exception as exc:  # noqa: BLE001
            problems.append(f"does not re-validate: {exc}")
        for p in points(done.action):
            if not (math.isfinite(p.x) and math.isfinite(p.y) and g.contains(int(p.x), int(p.y))):
                problems.append(f"point {p} off the screen")
        if done.action.kind not in c.device.supported:
            problems.append(f"unsupported kind {done.action.kind}")
        reparsed = to_device(d.parse(raw, c.ctx), g, c.ctx.resized)
        if reparsed != step.device_action:
            problems.append("not the parse of its answer")
        if problems:
            report.invalid_executed.append({"raw": raw[:2000], "why": problems})


def fuzz_dialect(
    dialect: str,
    n: int,
    seed: int,
    *,
    record_dir: Path | None,
    budgets: Budgets | None = None,
    direct: bool = True,
) -> Report:
    """Drive ``n`` generated outputs through ``Agent.run`` in ``dialect``."""
    r = random.Random(f"{seed}:{dialect}")
    report = Report(dialect)
    budgets = budgets or Budgets(max_steps=1000, max_seconds=1e9, max_retries=20, max_repeats=0)
    for c in contexts(dialect):
        todo = n // 2 if c.device.kind == "desktop" else n - n // 2
        made = list(outputs(r, c, todo))
        i = 0
        while i < len(made):
            chunk = made[i : i + RUN_OUTPUTS]
            model = ScriptedModel([o for _, o in chunk])
            rec: Recorder = NullRecorder()
            run_dir = None
            if record_dir is not None:
                run_dir = record_dir / f"{dialect}-{c.device.kind}-{report.runs:06d}"
                rec = DirectoryRecorder(run_dir)
            agent = Agent(model=model, device=c.device, dialect=dialect, budgets=budgets,
                          recorder=rec)  # fmt: skip
            report.runs += 1
            try:
                result = agent.run("fuzz")
            except BaseException as exc:  # noqa: BLE001 - this is what the fuzzer looks for
                k = max(len(model.prompts) - 1, 0)
                name, raw = chunk[k]
                report.crashes.append({"dialect": dialect, "device": c.device.kind,
                                       "generator": name, "raw": raw,
                                       "error": traceback.format_exception_only(exc)[-1].strip()})  # fmt: skip
                c.device.executed.clear()
                i += max(len(model.prompts), 1)
                continue
            used = len(model.prompts)
            exhausted = result.status == "error" and "but the script holds" in result.reason
            report.ends["script used up" if exhausted else result.status] += 1
            if result.status == "error" and not exhausted:
                report.errors.append(result.reason)
            if run_dir is not None:
                _check_recorded(run_dir, result, chunk, report, c)
            _check_executed(c, result, report)
            k = 0
            for step in result.steps:
                for a in step.attempts:
                    name, original = chunk[k]
                    k += 1
                    if a.parse_s is None:
                        report.unread += 1
                        continue
                    report.parse_s.append(a.parse_s)
                    if a.parse_s > report.slowest[0]:
                        report.slowest = (a.parse_s, name, a.raw[:80])
                    entry = (a.parse_s, len(report.parse_s), original, c.device.kind)
                    if len(report.top) < RETIME:
                        heapq.heappush(report.top, entry)
                    elif entry > report.top[0]:
                        heapq.heapreplace(report.top, entry)
                    if a.internal:
                        _note_internal(report, a.internal, original, name, c)
            report.outputs += used
            i += max(used, 1)
        if direct:
            _direct_parse(report, c, [o for _, o in made], budgets)
    _retime(report)
    return report


RETIME = 20


def _retime(report: Report) -> None:
    """Parse the slowest answers again, each alone, best of 5 (as the loop parses them)."""
    d = get_dialect(report.dialect)
    by_kind = {c.device.kind: c for c in contexts(report.dialect)}
    for _, _, raw, kind in report.top:
        best = math.inf
        for _ in range(5):
            t0 = time.perf_counter()
            with contextlib.suppress(Exception):  # only the time is wanted here
                d.parse(raw, by_kind[kind].ctx)
            best = min(best, time.perf_counter() - t0)
        report.retimed_max_s = max(report.retimed_max_s, best)


def _note_internal(report: Report, sig: str, raw: str, gen: str, c: Context) -> None:
    key = sig.split(": ", 1)[0]  # the exception type and where it was raised
    seen = report.internal.get(key)
    if seen is None:
        report.internal[key] = {"count": 1, "raw": raw, "generator": gen, "device": c.device.kind,
                                "error": sig}  # fmt: skip
    else:
        seen["count"] += 1
        if len(raw) < len(seen["raw"]):
            seen.update(raw=raw, generator=gen, device=c.device.kind, error=sig)


def _check_recorded(run_dir: Path, result: Any, chunk: list[tuple[str, str]], report: Report,
                    c: Context) -> None:  # fmt: skip
    try:
        traj = load_trajectory(run_dir)
        ok = traj.result is not None and len(traj.steps) == len(result.steps)
        why = "" if ok else f"{len(traj.steps)} steps on disk, {len(result.steps)} run"
    except Exception as exc:  # noqa: BLE001
        ok, why = False, f"trajectory unreadable: {exc}"
    if not ok:
        report.crashes.append({"dialect": report.dialect, "device": c.device.kind,
                               "generator": "?", "raw": chunk[0][1][:2000], "error": why})  # fmt: skip


DIRECT_SAMPLES = 12
DIRECT_TIMEOUT_S = 5.0


def _direct_worker(dialect: str, kind: str, texts: list[str], conn: Any) -> None:
    c = next(x for x in contexts(dialect) if x.device.kind == kind)
    d = get_dialect(dialect)
    for raw in texts:
        t0 = time.perf_counter()
        with contextlib.suppress(Exception):  # only the time is wanted here
            d.parse(raw, c.ctx)
        conn.send(time.perf_counter() - t0)


def _direct_parse(report: Report, c: Context, made: list[str], budgets: Budgets) -> None:
    """The parser's own time on a sample of the answers the loop refused unread (too long), in
    a child process that is killed after DIRECT_TIMEOUT_S per answer (a quadratic parser can
    take minutes on them)."""
    import multiprocessing as mp

    texts = [raw for raw in made if len(raw) > budgets.max_answer_chars][:DIRECT_SAMPLES]
    ctx = mp.get_context("fork")
    while texts:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_direct_worker, args=(c.dialect, c.device.kind, texts, child))
        proc.start()
        done = 0
        while done < len(texts) and parent.poll(DIRECT_TIMEOUT_S):
            report.direct_max_s = max(report.direct_max_s, parent.recv())
            done += 1
        if done < len(texts):  # stuck on texts[done]
            proc.kill()
            report.direct_max_s = max(report.direct_max_s, DIRECT_TIMEOUT_S)
            report.direct_timeouts += 1
            done += 1
        proc.join()
        texts = texts[done:]


def internal_key(dialect: str, kind: str, raw: str) -> str | None:
    """The internal error (type and place) parsing ``raw`` raises, through the loop's own
    classification; None when the parser answers properly (an action or a ParseError)."""
    from pixelpilot.agent.errors import ModelRetry
    from pixelpilot.agent.stages import internal

    c = next(x for x in contexts(dialect) if x.device.kind == kind)
    try:
        action = get_dialect(dialect).parse(raw, c.ctx)
        to_device(action, c.ctx.geometry, c.ctx.resized)
    except ModelRetry:
        return None
    except Exception as exc:  # noqa: BLE001
        return internal(exc).split(": ", 1)[0]
    return None


def minimize(dialect: str, kind: str, raw: str, key: str, budget: int = 3000) -> str:
    """A shorter answer that raises the same internal error (delete chunks while it still does,
    halving the chunk size down to one character; at most ``budget`` parses)."""
    size = max(1, len(raw) // 2)
    while size >= 1 and budget > 0:
        i = 0
        while i < len(raw) and budget > 0:
            candidate = raw[:i] + raw[i + size :]
            budget -= 1
            if candidate and internal_key(dialect, kind, candidate) == key:
                raw = candidate
            else:
                i += size
        size //= 2
    return raw


def _fuzz_one(dialect: str, n: int, seed: int, record: Path | None, conn: Any = None) -> Report:
    t = time.perf_counter()
    rep = fuzz_dialect(dialect, n, seed, record_dir=record / dialect if record else None)
    print(f"{dialect}: {rep.outputs} outputs in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    if conn is not None:
        conn.send(rep)
    return rep


def _fuzz_all(
    dialects: list[str], n: int, seed: int, record: Path | None, jobs: int
) -> list[Report]:
    """Each dialect's report, fuzzed ``jobs`` at a time, each in its own (forked) process;
    the outputs of a dialect depend only on the seed and the dialect, not on ``jobs``."""
    if jobs == 1:
        return [_fuzz_one(d, n, seed, record) for d in dialects]
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    reports: dict[str, Report] = {}
    todo = list(dialects)
    running: list[tuple[str, Any, Any]] = []
    while todo or running:
        while todo and len(running) < jobs:
            d = todo.pop(0)
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_fuzz_one, args=(d, n, seed, record, child))
            proc.start()
            running.append((d, proc, parent))
        ready = mp.connection.wait([conn for _, _, conn in running])
        for d, proc, conn in [r for r in running if r[2] in ready]:
            try:
                reports[d] = conn.recv()
            except EOFError:  # the process died: that is a crash of the whole fuzzer
                raise SystemExit(f"fuzzing {d} died (exit code {proc.exitcode})") from None
            proc.join()
            running.remove((d, proc, conn))
    return [reports[d] for d in dialects]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--outputs", type=int, default=100_000,
                    help="in total, over all dialects (each gets its share, rounded up)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dialect", action="append", choices=DIALECTS)
    ap.add_argument("--no-record", action="store_true", help="NullRecorder instead of files")
    ap.add_argument("--save-crashes", type=Path, help="append minimal internal errors here (JSONL)")
    ap.add_argument("--jobs", type=int, default=1, help="dialects fuzzed at once (processes)")
    args = ap.parse_args(argv)
    dialects = args.dialect or list(DIALECTS)
    per = -(-args.outputs // len(dialects))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pixelpilot-fuzz-") as tmp:
        record = None if args.no_record else Path(tmp)
        reports = _fuzz_all(dialects, per, args.seed, record, max(1, args.jobs))
    print(f"{sum(r.outputs for r in reports)} outputs, {sum(r.runs for r in reports)} runs, "
          f"{time.perf_counter() - t0:.0f} s, seed {args.seed}")  # fmt: skip
    head = (f"{'dialect':<11}{'outputs':>8}{'crashes':>8}{'invalid':>8}{'executed':>9}"
            f"{'internal':>9}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>9}{'retimed':>9}{'unread':>7}"
            f"{'direct max ms':>14}")  # fmt: skip
    print(head)
    for rep in reports:
        print(f"{rep.dialect:<11}{rep.outputs:>8}{len(rep.crashes):>8}{len(rep.invalid_executed):>8}"
              f"{rep.executed:>9}{sum(v['count'] for v in rep.internal.values()):>9}"
              f"{statistics.median(rep.parse_s or [0]) * 1e3:>8.2f}{_pct(rep.parse_s, 0.99) * 1e3:>8.2f}"
              f"{max(rep.parse_s or [0]) * 1e3:>9.1f}{rep.retimed_max_s * 1e3:>9.1f}{rep.unread:>7}"
              f"{rep.direct_max_s * 1e3:>14.1f}")  # fmt: skip
    for rep in reports:
        print(f"\n{rep.dialect}: ends {dict(rep.ends)}; slowest parse {rep.slowest[0] * 1e3:.1f} ms "
              f"({rep.slowest[1]}: {rep.slowest[2]!r}); direct parses over "
              f"{DIRECT_TIMEOUT_S:g} s: {rep.direct_timeouts}")  # fmt: skip
        for _sig, v in sorted(rep.internal.items(), key=lambda kv: -kv[1]["count"]):
            print(f"  internal x{v['count']} [{v['generator']}, {v['device']}] {v['error'][:150]}"
                  f" — shortest {len(v['raw'])} chars: {v['raw'][:100]!r}")  # fmt: skip
        for reason in rep.errors[:5]:
            print(f"  ERROR END {reason}")
        for crash in rep.crashes[:5]:
            print(f"  CRASH [{crash['generator']}] {crash['error']}: {crash['raw'][:100]!r}")
        for wrong in rep.invalid_executed[:5]:
            print(f"  INVALID EXECUTED {wrong}")
    if args.save_crashes:
        with args.save_crashes.open("a", encoding="utf-8") as f:
            for rep in reports:
                for key, v in rep.internal.items():
                    raw = minimize(rep.dialect, v["device"], v["raw"], key)
                    f.write(json.dumps({"dialect": rep.dialect, "device": v["device"],
                                        "generator": v["generator"], "error": key,
                                        "raw": raw}, ensure_ascii=True) + "\n")  # fmt: skip
    bad = sum(len(r.crashes) + len(r.invalid_executed) for r in reports)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
