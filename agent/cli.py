"""The ``pixelpilot`` command: a thin layer over functions that tests call directly.

Exit codes: 0 success; 1 the run or a scenario did not succeed; 2 bad flag, file or reference
(one line on stderr); 3 the device failed; 4 the model backend failed.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.exceptions import TyperException

from pixelpilot.agent.actions import points
from pixelpilot.agent.cli_control import (
    ConfirmOption,
    KillKeyOption,
    NoHotkeysOption,
    PauseKeyOption,
    PolicyOption,
    guards,
    listening,
)
from pixelpilot.agent.cli_model import model_app
from pixelpilot.agent.cli_traj import register as register_trajectory_commands
from pixelpilot.agent.errors import DeviceError, ModelError, PixelPilotError, UserError
from pixelpilot.agent.geometry import PixelBudget
from pixelpilot.scenarios.targets import DEVICE_HELP

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="pixelpilot: visual automation agents on Qwen2-VL-family models.",
)
scenario_app = typer.Typer(no_args_is_help=True, help="Run, test and list scenario files.")
app.add_typer(scenario_app, name="scenario")
register_trajectory_commands(app)  # view, eval, export
app.add_typer(model_app, name="model")
out = Console(highlight=False, soft_wrap=True)
DEFAULT_RUNS = Path("runs")
DEMO = "desktop/demo.yaml"


def _progress(step: Any) -> None:
    """One line per step: what was done, where, how long each stage took."""
    t = step.timings
    retry = f" [red]{step.retries} rejected[/]" if step.retries else ""
    if step.error:
        what = f"[red]error: {escape(step.error)}[/]"
    elif step.action is None:
        last = step.attempts[-1].error if step.attempts else ""
        what = f"[red]no valid action[/] ({escape(last or '')})"
    else:
        what = _describe(step)
    stages = " ".join(
        f"{k} {t.get(k, 0) * 1000:.0f}ms" for k in ("capture", "generate", "parse", "execute")
    )
    out.print(f"step {step.index:>2}  {what}{retry}  [dim]{stages}[/]")


def _describe(step: Any) -> str:
    a, d = step.action, step.device_action
    where = " ".join(f"({p.x:g},{p.y:g})px" for p in points(d))
    extra = ""
    if a.kind == "type":
        extra = f" {a.text!r}"
    elif a.kind == "hotkey":
        extra = " " + "+".join(a.keys)
    elif a.kind == "finish":
        extra = f" {a.status} {a.answer!r}" if a.answer else f" {a.status}"
    return f"[bold]{a.kind}[/]{escape(extra)} {where}".rstrip()


def _display(width: int, height: int):
    from pixelpilot.tools.xvfb import ensure_display

    return ensure_display(width, height)


@app.command()
def run(
    task: Annotated[str, typer.Argument(help="What the agent should do.")],
    model: Annotated[
        str,
        typer.Option(
            help="Model: a short name (see 'pixelpilot model list'), a local "
            "checkpoint directory, tiny, openai:URL#NAME or scripted:FILE."
        ),
    ] = "tiny",
    dialect: Annotated[
        str | None,
        typer.Option(help="qwen2vl | qwen25vl | uitars | uitars-1.5 (default: the model's own)"),
    ] = None,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "desktop",
    max_pixels: Annotated[
        int | None,
        typer.Option(
            min=3136,
            help="Pixel budget of the model's image (default: the model's own; "
            "a full-resolution screenshot for Qwen2-VL).",
        ),
    ] = None,
    min_pixels: Annotated[int, typer.Option(min=3136)] = 3136,
    max_steps: Annotated[int, typer.Option(min=1)] = 15,
    max_seconds: Annotated[float, typer.Option(min=1)] = 300.0,
    max_retries: Annotated[int, typer.Option(min=0)] = 2,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where run directories go.")
    ] = DEFAULT_RUNS,
    compile_steps: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="Local models on a GPU: one-token decode steps through torch.compile (CUDA "
            "graphs). The first step compiles (~30 s); later steps decode faster.",
        ),
    ] = False,
    max_repeats: Annotated[
        int,
        typer.Option(min=0, help="End the run as stuck after this many identical actions in "
                     "a row that change nothing on the screen (0: never)."),
    ] = 5,
    policy: PolicyOption = None,
    confirm: ConfirmOption = False,
    kill_key: KillKeyOption = "ctrl+alt+shift+k",
    pause_key: PauseKeyOption = "ctrl+alt+shift+p",
    no_hotkeys: NoHotkeysOption = False,
) -> None:
    """Run TASK with a model on a device and record the trajectory."""
    from pixelpilot.agent.dialects import get_dialect
    from pixelpilot.agent.loop import Budgets
    from pixelpilot.scenarios.targets import open_device
    from pixelpilot.vlm.registry import default_dialect, load_model

    the_guards = guards(policy, confirm, kill_key, pause_key, not no_hotkeys)
    the_device = open_device(device)  # a bad reference fails before a model loads
    the_dialect = get_dialect(dialect or default_dialect(model))
    options: dict[str, Any] = {}
    if max_pixels is not None:
        if max_pixels < min_pixels:
            raise UserError(f"--max-pixels {max_pixels} is below --min-pixels {min_pixels}")
        options["pixels"] = PixelBudget(min_pixels, max_pixels)
    if compile_steps:
        options["compile"] = True
    the_model = load_model(model, **options)
    budgets = Budgets(max_steps, max_seconds, max_retries, max_repeats)
    result = _record_run(
        task, the_model, the_device, the_dialect, budgets, out_dir, "run", the_guards
    )
    raise typer.Exit(0 if result.status == "success" else 1)


def _record_run(
    task: str,
    model: Any,
    device: contextlib.AbstractContextManager[Any],
    dialect: Any,
    budgets: Any,
    out_dir: Path,
    label: str,
    guards: Any = None,
) -> Any:
    """Run ``task`` on ``device`` (opened here) with a line per step, record it under
    ``out_dir``, close the model, print the outcome; the RunResult. ``guards``: the policy,
    confirm hook and hotkeys (cli_control)."""
    from pixelpilot.agent.cli_control import Guards
    from pixelpilot.agent.loop import Agent
    from pixelpilot.agent.trajectory import DirectoryRecorder

    g = guards or Guards(hotkeys=False)
    rec = DirectoryRecorder(out_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{label}")
    try:
        with device as dev, listening(g, dev, out):
            agent = Agent(
                model=model, device=dev, dialect=dialect, budgets=budgets, recorder=rec,
                on_step=_progress, policy=g.policy, confirm=g.confirm, control=g.control,
            )  # fmt: skip
            result = agent.run(task)
    finally:
        model.close()
    _summary(result.status, result.reason, result.answer, result.trajectory)
    return result


def _summary(status: str, reason: str, answer: str, trajectory: str | None) -> None:
    colour = "green" if status == "success" else "red"
    line = f"[{colour}]{status}[/]: {escape(reason)}"
    out.print(line + (f" — answer: {escape(repr(answer))}" if answer else ""))
    if trajectory:
        out.print(f"trajectory: {escape(trajectory)}")


@app.command()
def demo(
    model: Annotated[
        str, typer.Option(help="Model reference (default: the built-in tiny one).")
    ] = "tiny",
    scripted: Annotated[
        bool, typer.Option(help="Replay the demo scenario's scripted outputs instead.")
    ] = False,
    max_steps: Annotated[int, typer.Option(min=1)] = 5,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where run directories go.")
    ] = DEFAULT_RUNS,
    policy: PolicyOption = None,
    confirm: ConfirmOption = False,
    kill_key: KillKeyOption = "ctrl+alt+shift+k",
    pause_key: PauseKeyOption = "ctrl+alt+shift+p",
    no_hotkeys: NoHotkeysOption = False,
) -> None:
    """Run the demo task on the fixture app on a virtual display with a real model.

    The default model is the built-in tiny Qwen2-VL checkpoint, built here on first use with no
    network. Its weights are RANDOM: every answer is a valid, grammar-constrained call that
    really executes, but it does not aim at anything. Exit 0 unless the run hit an error.
    """
    from pixelpilot.agent.loop import Budgets
    from pixelpilot.scenarios.spec import BUILTIN_DIR, load_scenario
    from pixelpilot.scenarios.targets import open_target
    from pixelpilot.vlm.registry import default_dialect, load_model

    the_guards = guards(policy, confirm, kill_key, pause_key, not no_hotkeys)
    if scripted:
        _run_files([BUILTIN_DIR / DEMO], dialect=None, out_dir=out_dir, policy=the_guards.policy)
    scenario = load_scenario(BUILTIN_DIR / DEMO)
    options: dict[str, Any] = {}
    if model in ("tiny", "tiny-qwenvocab"):
        options = {"temperature": 1.0, "seed": 3}  # greedy on random weights repeats one call
        out.print(
            "[yellow]note:[/] the tiny checkpoint has random weights: its calls are valid "
            "and really executed, but aimless until a trained demo model exists"
        )
    the_model = load_model(model, **options)
    with _display(*scenario.target.screen), open_target(scenario.target) as target:
        budgets = Budgets(max_steps=max_steps, max_seconds=600)
        device = contextlib.nullcontext(target.device)  # open_target opened it
        result = _record_run(
            scenario.task, the_model, device, default_dialect(model), budgets, out_dir, "demo",
            the_guards,
        )  # fmt: skip
    raise typer.Exit(3 if result.status == "error" else 0)


@scenario_app.command("run")
def scenario_run(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    dialect: Annotated[str | None, typer.Option(help="Only this dialect's script.")] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where run directories go.")
    ] = DEFAULT_RUNS,
    policy: PolicyOption = None,
) -> None:
    """Run one scenario (every dialect it has a script for) and check the outcome."""
    the_policy = guards(policy, False, hotkeys=False).policy
    _run_files([file], dialect=dialect, out_dir=out_dir, policy=the_policy)


@scenario_app.command("test")
def scenario_test(
    path: Annotated[
        Path | None, typer.Argument(help="File or directory (default: built-in).")
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where run directories go.")
    ] = DEFAULT_RUNS,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="A line per step.")] = False,
) -> None:
    """Run every scenario under PATH; exit 0 only when every check holds."""
    from pixelpilot.scenarios.spec import BUILTIN_DIR, discover

    files = discover(path or BUILTIN_DIR)
    if not files:
        raise UserError(f"{path or BUILTIN_DIR}: no scenario files (*.yaml) found")
    _run_files(files, dialect=None, out_dir=out_dir, verbose=verbose)


@scenario_app.command("list")
def scenario_list(
    path: Annotated[
        Path | None, typer.Argument(help="File or directory (default: built-in).")
    ] = None,
) -> None:
    """List scenarios with their target, dialects and description."""
    from rich.table import Table

    from pixelpilot.scenarios.spec import BUILTIN_DIR, discover, load_scenario

    table = Table("scenario", "target", "dialects", "description", box=None)
    for file in discover(path or BUILTIN_DIR):
        s = load_scenario(file)
        table.add_row(s.name, s.target.kind, ", ".join(s.scripts), escape(s.description))
    out.print(table)


def _run_files(
    files: list[Path], dialect: str | None, out_dir: Path, verbose: bool = True, policy: Any = None
) -> None:
    from pixelpilot.scenarios.runner import run_scenario
    from pixelpilot.scenarios.spec import load_scenario

    scenarios = [load_scenario(f) for f in files]  # every file must load before anything runs
    sizes = {s.target.screen for s in scenarios if s.target.kind == "desktop"}
    if len(sizes) > 1:
        raise UserError(
            f"desktop scenarios need different screens {sorted(sizes)}; run them separately"
        )
    failed = 0
    with _display(*sizes.pop()) if sizes else contextlib.nullcontext():
        for s in scenarios:
            for o in run_scenario(
                s,
                dialects=[dialect] if dialect else None,
                out_dir=out_dir,
                on_step=_progress if verbose else None,
                policy=policy,
            ):
                mark = "[green]PASS[/]" if o.passed else "[red]FAIL[/]"
                what = escape(f"{o.scenario} [{o.dialect}] {o.result.status}: {o.result.reason}")
                out.print(f"{mark} {what}")
                for line in o.failures:
                    out.print(f"     [red]✗[/] {escape(line)}")
                if o.result.trajectory:
                    out.print(f"     trajectory: {escape(o.result.trajectory)}")
                failed += not o.passed
    out.print(f"{'[red]' if failed else '[green]'}{failed} failed[/] of {len(scenarios)} scenarios")
    raise typer.Exit(1 if failed else 0)


@app.command("replay")
def replay_cmd(
    trajectory: Annotated[Path, typer.Argument(help="A run directory.")],
    target: Annotated[
        bool,
        typer.Option(help="Start the recorded scenario target first (fixture app, phone, scene)."),
    ] = True,
) -> None:
    """Re-execute a trajectory's executed actions: on the recorded scenario target, or on the
    desktop."""
    from pixelpilot.agent.replay import replay
    from pixelpilot.agent.trajectory import load_trajectory
    from pixelpilot.scenarios.fixture import FixtureApp
    from pixelpilot.scenarios.targets import open_target
    from pixelpilot.tools.desktop import DesktopDevice

    traj = load_trajectory(trajectory)
    dev_meta = traj.meta.device
    recorded_target = traj.meta.extra.get("target")
    with contextlib.ExitStack() as stack:
        spec = _recorded_target(trajectory, recorded_target) if target and recorded_target else None
        if spec is not None and spec.kind != "desktop":
            dev = stack.enter_context(open_target(spec)).device  # a fresh phone or scene
        else:  # the desktop, at whatever size it is: points are mapped if it differs
            size = (dev_meta.get("width", 1280), dev_meta.get("height", 800))
            stack.enter_context(_display(*size))
            if spec is not None:
                stack.enter_context(FixtureApp(command=recorded_target.get("command")))
            dev = stack.enter_context(DesktopDevice())
        done = replay(
            traj, dev, on_step=lambda s, e: out.print(f"step {s.index:>2}  {_describe(s)}")
        )
    out.print(f"replayed {len(done)} actions from {escape(str(trajectory))}")


def _recorded_target(trajectory: Path, recorded: dict[str, Any]) -> Any:
    from pydantic import TypeAdapter, ValidationError

    from pixelpilot.scenarios.spec import Target

    try:
        return TypeAdapter(Target).validate_python(recorded)
    except ValidationError as exc:
        raise UserError(
            f"{trajectory}: the recorded target is not readable ({exc.errors()[0]['msg']})"
        ) from None


EXIT_CODES: tuple[tuple[type[PixelPilotError], str, int], ...] = (
    (UserError, "error", 2),
    (DeviceError, "device error", 3),
    (ModelError, "model error", 4),
    (PixelPilotError, "error", 1),
)
"""Error kind -> message prefix and exit code; the first match wins."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors and exit codes instead of tracebacks."""
    signal.signal(signal.SIGTERM, _terminate)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        rc = app(args=argv, standalone_mode=False, prog_name="pixelpilot")
        return rc if isinstance(rc, int) else 0  # a command's typer.Exit code comes back here
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        err.print("aborted")
        return 130
    except TyperException as e:  # typer's usage errors: bad flag, missing argument, ...
        ctx = getattr(e, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        err.print(f"error: {e.format_message()}{hint}", markup=False)
        return getattr(e, "exit_code", 2)
    except PixelPilotError as e:
        prefix, code = next((p, c) for cls, p, c in EXIT_CODES if isinstance(e, cls))
        err.print(f"{prefix}: {e}", markup=False)
        return code


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # the loop ends the run cleanly and the recorder flushes


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
