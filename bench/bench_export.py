"""Export (and report) cost per 100 recorded steps, on real recordings of the shipped scenarios.

    python bench/bench_export.py [RUNS_DIR] [--repeat N]

Without RUNS_DIR the shipped desktop scenarios are recorded first (Xvfb + the Tk fixture app,
``bench/record_runs.py``). Every run is exported (all runs, retried steps kept) in each target
dialect, with images copied and linked; the HTML report and GIF are timed per run. Numbers
are per 100 written steps: seconds and megabytes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from pixelpilot.agent.animate import write_gif  # noqa: E402
from pixelpilot.agent.dialects import DIALECTS  # noqa: E402
from pixelpilot.agent.export import export_sft  # noqa: E402
from pixelpilot.agent.viewer import write_report  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("runs", nargs="?", type=Path)
    ap.add_argument("--repeat", type=int, default=3, help="best of N timings")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pp-bench-export-"))
    try:
        from record_runs import recorded_runs

        runs_dir, runs = recorded_runs(args.runs, work)
        print(f"{len(runs)} runs from {runs_dir}")
        print(
            f"{'dialect':<11} {'images':<6} {'steps':>5} {'s/100 steps':>12} {'MB/100 steps':>13}"
        )
        for dialect in DIALECTS:
            for images in ("copy", "link"):
                best = float("inf")
                for i in range(args.repeat):
                    out = work / f"export-{dialect}-{images}-{i}"
                    stats = export_sft(
                        runs, out, dialect=dialect, only_success=False, drop_retried=False,
                        images=images,  # type: ignore[arg-type]
                    )  # fmt: skip
                    best = min(best, stats.seconds)
                    shutil.rmtree(out)
                n = max(stats.written, 1)
                print(
                    f"{dialect:<11} {images:<6} {stats.written:>5} {best / n * 100:>12.3f} "
                    f"{stats.bytes / n * 100 / 1e6:>13.2f}"
                )
        steps = 0
        t0 = time.perf_counter()
        size = 0
        for r in runs:
            report = write_report(r, work / "reports" / f"{r.name}.html")
            size += report.stat().st_size
            steps += sum(1 for _ in (r / "steps.jsonl").open())
        t_report = time.perf_counter() - t0
        t0 = time.perf_counter()
        for r in runs:
            write_gif(r, work / "gifs" / f"{r.name}.gif", max_width=640)
        t_gif = time.perf_counter() - t0
        print(
            f"HTML report (embedded PNGs): {t_report / steps * 100:.2f} s and "
            f"{size / steps * 100 / 1e6:.1f} MB per 100 steps; GIF (640 px): "
            f"{t_gif / steps * 100:.2f} s per 100 steps ({steps} steps)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
