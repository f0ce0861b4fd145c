"""Parsing cost on adversarial answers: 1 MB of text built to break each kind of scanner, in
every dialect, and the time of a typical answer.

    python3 bench/bench_parse.py [--repeat 3]

Prints a markdown table: the slowest of the 1 MB answers per dialect (median of ``--repeat``
runs) and which one it was, and a typical call's parse time. The test suite asserts < 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import suppress

from pixelpilot.agent.actions import Click, Point
from pixelpilot.agent.dialects import DIALECTS, get_dialect
from pixelpilot.agent.dialects.check import contexts, megabyte_answers
from pixelpilot.agent.errors import ParseError


def _ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with suppress(ParseError):
            fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    answers = megabyte_answers()
    ctx = contexts()["desktop"]
    print(f"{len(answers)} adversarial answers of ~1 MB each\n")
    print(
        "| dialect | slowest 1 MB answer (ms) | which | all 1 MB answers (ms) | typical call (µs) |"
    )
    print("|---|---|---|---|---|")
    for name in DIALECTS:
        d = get_dialect(name)
        times = {
            what: _ms(lambda t=text, d=d: d.parse(t, ctx), args.repeat)
            for what, text in answers.items()
        }
        worst = max(times, key=times.__getitem__)
        w, h = (1000, 1000) if d.space == "norm1000" else ctx.resized
        typical = d.format(Click(point=Point(x=w // 2, y=h // 3, space=d.space)), ctx)
        t0 = time.perf_counter()
        for _ in range(1000):
            d.parse(typical, ctx)
        per = (time.perf_counter() - t0) * 1000
        print(f"| {name} | {times[worst]:.1f} | {worst} | {sum(times.values()):.0f} | {per:.0f} |")


if __name__ == "__main__":
    main()
