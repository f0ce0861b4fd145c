"""Robot device latency per action and pick-and-place accuracy, on the real pybullet scenes.

    python bench/bench_robot.py [--repeat 10] [--size 640x480]

Part 1 drives the device directly over ``--repeat`` seeds of every scene: observe (TinyRenderer
frame + depth + segmentation), pick, place, home. Placement error is the distance in the table
plane between where the object came to rest and (a) the world point under the place pixel
(the device's own accuracy: IK, grasp slip, release) and (b) the intended target (adds the
pixel quantisation of pointing at it). Wall times depend on the machine's load; the CPU column
(this process's CPU time) does much less, and the load average is printed. Part 2 runs the shipped robot scenarios through the real
agent loop with their scripted outputs and reports the per-step stage medians.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections import defaultdict
from typing import Any

from pixelpilot.agent.actions import Home, Pick, Place, Point
from pixelpilot.scenarios.runner import run_scenario
from pixelpilot.scenarios.spec import BUILTIN_DIR, discover, load_scenario
from pixelpilot.tools.robot import TRAY_FLOOR_Z, TRAY_XY, RobotDevice

TRAY_FLOOR = (*TRAY_XY, TRAY_FLOOR_Z)


def px(dev: RobotDevice, world: tuple[float, float, float]) -> Point:
    x, y, _ = dev.camera.world_to_pixel(world)
    return Point(x=round(x), y=round(y), space="screen_px")


def timed(lat: dict[str, list[float]], cpu: dict[str, list[float]], name: str, fn: Any) -> Any:
    """Call ``fn``, recording its wall time and this process's CPU time under ``name``."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    lat[name].append(time.perf_counter() - w0)
    cpu[name].append(time.process_time() - c0)
    return out


def stats(v: list[float]) -> tuple[float, float, float, float]:
    v = sorted(v)
    return statistics.median(v), v[min(len(v) - 1, int(0.9 * len(v)))], statistics.mean(v), v[-1]


def one_run(
    scene: str,
    seed: int,
    size: tuple[int, int],
    lat: dict[str, list[float]],
    cpu: dict[str, list[float]],
    err: dict[str, list[float]],
) -> None:
    """Pick and place once (twice in 'tray': onto the table, then into the tray)."""
    plans: dict[str, list[tuple[str, tuple[float, float, float] | None, str]]] = {
        "tray": [("red_cube", (0.5, 0.0, 0.0), "table"), ("red_cube", TRAY_FLOOR, "tray")],
        "stack": [("red_cube", None, "block")],
        "objects": [("green_cylinder", TRAY_FLOOR, "tray")],
    }
    jobs = plans[scene]
    with RobotDevice(scene, width=size[0], height=size[1], seed=seed) as dev:
        for obj, target, where in jobs:
            timed(lat, cpu, "observe", dev.observe)
            x, y = dev.locate(obj)
            pick = Pick(point=Point(x=x, y=y, space="screen_px"))
            done = timed(lat, cpu, "pick", lambda a=pick: dev.execute(a))
            assert done.note == f"grasped {obj}", (scene, seed, done.note)
            timed(lat, cpu, "observe", dev.observe)
            if target is None:  # onto the blue block: its top-face centre
                bx, by, _ = dev.state()["objects"]["blue_cube"]["position_mm"]
                target = (bx / 1000, by / 1000, 0.04)
            point = px(dev, target)
            _, aimed = dev.look(int(point.x), int(point.y))
            timed(lat, cpu, "place", lambda p=point: dev.execute(Place(point=p)))
            timed(lat, cpu, "home", lambda: dev.execute(Home()))
            rest = dev.state()["objects"][obj]["position_mm"]
            err[f"{where}: vs pixel's point"].append(
                math.hypot(rest[0] - 1000 * aimed[0], rest[1] - 1000 * aimed[1])
            )
            err[f"{where}: vs intended"].append(
                math.hypot(rest[0] - 1000 * target[0], rest[1] - 1000 * target[1])
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=10, help="seeds per scene")
    ap.add_argument("--size", default="640x480", help="camera image WxH")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    lat: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    err: dict[str, list[float]] = defaultdict(list)
    t0 = time.perf_counter()
    for seed in range(args.repeat):
        for scene in ("tray", "stack", "objects"):
            one_run(scene, seed, (w, h), lat, cpu, err)
    print(f"device, {args.size}, {args.repeat} seeds x 3 scenes ({time.perf_counter() - t0:.1f} s)")
    print(f"load average (1 min) {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'action':<8} {'n':>4} {'median ms':>10} {'p90 ms':>8} {'CPU median ms':>14}")
    for k in ("observe", "pick", "place", "home"):
        med, p90, _, _ = stats(lat[k])
        cmed = stats(cpu[k])[0]
        print(f"{k:<8} {len(lat[k]):>4} {med * 1e3:10.1f} {p90 * 1e3:8.1f} {cmed * 1e3:14.1f}")
    print(f"{'placement error (mm)':<32} {'n':>4} {'mean':>6} {'max':>6}")
    for k, v in err.items():
        _, _, mean, mx = stats(v)
        print(f"{k:<32} {len(v):>4} {mean:6.1f} {mx:6.1f}")

    steps: dict[str, list[float]] = defaultdict(list)
    for path in discover(BUILTIN_DIR / "robot"):
        for outcome in run_scenario(load_scenario(path)):
            assert outcome.passed, (outcome.scenario, outcome.dialect, outcome.failures)
            for step in outcome.result.steps:
                kind = step.action.kind if step.action is not None else "rejected"
                steps["capture"].append(step.timings["capture"])
                steps[f"execute {kind}"].append(step.timings["execute"])
                steps["step total"].append(sum(step.timings.values()))
    print("scenario runs through the agent loop (scripted model), ms per step")
    print(f"{'stage':<18} {'n':>4} {'median':>8} {'p90':>8}")
    for k, v in steps.items():
        med, p90, _, _ = stats(v)
        print(f"{k:<18} {len(v):>4} {med * 1e3:8.1f} {p90 * 1e3:8.1f}")


if __name__ == "__main__":
    main()
