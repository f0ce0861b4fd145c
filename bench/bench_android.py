"""Per-action latency of AndroidDevice over the mobile scenarios, through the real adb server.

    python bench/bench_android.py [--repeat 5] [--screencap png|raw] [--serial SERIAL]

Without ``--serial`` every shipped mobile scenario (scenarios/mobile/, successful ones) runs
through the real agent loop against the simulated phone on a private adb server (the real
``adb`` binary); each step's device time is filed by action kind: ``observe`` (screencap +
decode), ``tap``, ``swipe``/``long_press`` (minus the gesture's own duration, which the phone
really waits), ``type``, ``key`` (system buttons) and ``open_app``; then one shell round trip
with adbutils' default client and with the one AndroidDevice uses. With ``--serial`` it
measures observe, tap-free keys and typing on that real device instead (nothing is tapped).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from pixelpilot.agent.actions import SystemButton, TypeText
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.scenarios.phone import AdbServer, PhoneFixture
from pixelpilot.scenarios.spec import BUILTIN_DIR, discover, load_scenario
from pixelpilot.tools.android import AndroidDevice
from pixelpilot.vlm.scripted import ScriptedModel

KINDS = ("observe", "tap", "swipe", "long_press", "type", "key", "open_app")


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def report(samples: dict[str, list[float]], title: str) -> None:
    print(f"\n{title}")
    print(f"{'action':<12}{'n':>5}{'median ms':>12}{'p90 ms':>10}")
    for kind in KINDS:
        xs = samples.get(kind) or []
        if xs:
            med, p90 = statistics.median(xs) * 1000, _pct(xs, 0.9) * 1000
            print(f"{kind:<12}{len(xs):>5}{med:>12.1f}{p90:>10.1f}")


def record(samples: dict[str, list[float]], step: Any) -> None:
    samples.setdefault("observe", []).append(step.timings.get("capture", 0.0))
    done = step.executed
    if done is None:
        return
    kind = {"system_button": "key"}.get(done.action.kind, done.action.kind)
    gesture = getattr(done.action, "seconds", 0.0) if kind in ("swipe", "long_press") else 0.0
    samples.setdefault(kind, []).append(max(0.0, done.seconds - gesture))


def bench_fixture(repeat: int, screencap: str) -> dict[str, list[float]]:
    files = discover(BUILTIN_DIR / "mobile")
    scenarios = [s for s in map(load_scenario, files) if s.expect.status == "success"]
    samples: dict[str, list[float]] = {}
    with AdbServer() as server:
        print(f"adb: {server.adb_path}")
        for _ in range(repeat):
            for s in scenarios:
                t: Any = s.target
                for dialect, outputs in s.scripts.items():
                    with (
                        PhoneFixture(t.start, *t.screen, t.density, adb=server) as phone,
                        AndroidDevice(**phone.device_kwargs(), screencap=screencap) as dev,  # type: ignore[arg-type]
                    ):
                        Agent(
                            model=ScriptedModel(outputs), device=dev, dialect=dialect,
                            budgets=Budgets(**s.budgets.model_dump()),
                            on_step=lambda step: record(samples, step),
                        ).run(s.task)  # fmt: skip
    return samples


def bench_clients(n: int = 30) -> None:
    """One `input tap` round trip: adbutils' own client vs the one AndroidDevice uses."""
    import adbutils

    from pixelpilot.tools.android import adb_client

    with PhoneFixture("home") as phone:
        clients = {"adbutils.AdbClient (default)": adbutils.AdbClient(port=phone.adb.port),
                   "pixelpilot adb_client (TCP_NODELAY, no sleep)": adb_client(port=phone.adb.port)}  # fmt: skip
        print(f"\nshell round trip of `input tap 10 300` (median of {n})")
        for name, client in clients.items():
            dev = client.device(phone.serial)
            dev.get_features()
            xs = []
            for _ in range(n):
                t0 = time.perf_counter()
                dev.shell2("input tap 10 300", v2=True, encoding=None)
                xs.append(time.perf_counter() - t0)
            print(f"  {name:<48}{statistics.median(xs) * 1000:>8.2f} ms")


def bench_real(serial: str, repeat: int, screencap: str) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    with AndroidDevice(serial, screencap=screencap) as dev:  # type: ignore[arg-type]
        for _ in range(repeat):
            samples.setdefault("observe", []).append(dev.observe().seconds)
            t0 = time.perf_counter()
            dev.execute(SystemButton(button="home"))
            samples.setdefault("key", []).append(time.perf_counter() - t0)
        print(f"typing via {'ADBKeyboard' if dev.ime_active else 'input text'} "
              "(into whatever has focus)")  # fmt: skip
        for _ in range(repeat):
            samples.setdefault("type", []).append(dev.execute(TypeText(text="pixel pilot")).seconds)
    return samples


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--screencap", choices=["png", "raw"], default="png")
    ap.add_argument("--serial", help="measure a real device instead of the simulated phone")
    args = ap.parse_args()
    if args.serial:
        samples = bench_real(args.serial, args.repeat, args.screencap)
        report(samples, f"real device {args.serial}, screencap {args.screencap}")
    else:
        samples = bench_fixture(args.repeat, args.screencap)
        report(samples, f"simulated phone over the real adb server, screencap {args.screencap}, "
                        f"{args.repeat} rounds of the mobile scenarios")  # fmt: skip
        bench_clients()


if __name__ == "__main__":
    main()
