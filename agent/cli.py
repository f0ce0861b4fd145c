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

from pixelpilot.agent.cli_batch import batch
from pixelpilot.agent.cli_bench import bench_app
from pixelpilot.agent.cli_common import RAY_LOCAL, bare_option, claimed_device, out
from pixelpilot.agent.cli_common import display as _display
from pixelpilot.agent.cli_common import progress as _progress
from pixelpilot.agent.cli_control import (
    ConfirmOption,
    KillKeyOption,
    NoHotkeysOption,
    PauseKeyOption,
    PolicyOption,
    guards,
    listening,
)
from pixelpilot.agent.cli_demo import demo
from pixelpilot.agent.cli_model import model_app
from pixelpilot.agent.cli_prompt import prompt_command
from pixelpilot.agent.cli_scenario import scenario_app
from pixelpilot.agent.cli_train import train_cmd
from pixelpilot.agent.cli_traj import SecretOpt, SecretsFileOpt
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
app.add_typer(scenario_app, name="scenario")
register_trajectory_commands(app)  # view, eval, export, replay
model_app.command("prompt")(prompt_command)
app.add_typer(model_app, name="model")
app.add_typer(bench_app, name="bench")
app.command("batch")(batch)
app.command("train")(train_cmd)
app.command("demo")(demo)
DEFAULT_RUNS = Path("runs")


@app.command()
def run(
    task: Annotated[
        str | None,
        typer.Argument(
            help="What the agent should do (default: the scenario's task; not with --resume)."
        ),
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            help="Model: a short name (see 'pixelpilot model list'), a local "
            "checkpoint directory, tiny, openai:URL#NAME or scripted:FILE."
        ),
    ] = "tiny",
    dialect: Annotated[
        str | None,
        typer.Option(
            help="qwen2vl | qwen25vl | uitars | uitars-1.5 | osatlas | showui "
            "(default: the model's own)"
        ),
    ] = None,
    official: Annotated[
        bool,
        typer.Option(
            "--official",
            help="The family's official format only: no retry feedback, no extra verbs "
            "(ask_user, ...), no notes where the family has no slot (docs/models.md).",
        ),
    ] = False,
    device: Annotated[str | None, typer.Option(help=f"{DEVICE_HELP} (default: desktop)")] = None,
    scenario: Annotated[
        Path | None,
        typer.Option(
            help="Run on a scenario's target (started here) and judge the run by its checks "
            "on the target's real state; the task defaults to the scenario's."
        ),
    ] = None,
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
    secret: SecretOpt = None,
    secrets_file: SecretsFileOpt = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue this killed or budget-ended run (its task and history) with the "
            "model, dialect and device given here, appending to it; budgets count this part.",
        ),
    ] = None,
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
    """Run TASK with a model on a device and record the trajectory.

    With --scenario, the run is also judged by the scenario's checks on the target's real
    state ("achieved"), apart from the model's own claim; exit 0 only when the model
    finished with success and the checks hold. With --resume, a killed or budget-ended run
    goes on in its own directory."""
    from pixelpilot.agent import resume as r
    from pixelpilot.agent.dialects import Fidelity, get_dialect
    from pixelpilot.agent.loop import Budgets
    from pixelpilot.agent.secrets import Secrets
    from pixelpilot.scenarios.spec import load_scenario
    from pixelpilot.scenarios.targets import open_device
    from pixelpilot.vlm.registry import default_dialect, load_model
    from pixelpilot.vlm.scripted import ScriptedModel

    the_guards = guards(policy, confirm, kill_key, pause_key, not no_hotkeys)
    secrets = Secrets.from_cli(secret or [], secrets_file or [])
    the_scenario = load_scenario(scenario) if scenario is not None else None
    if the_scenario is not None and device is not None:
        raise UserError("--device and --scenario exclude each other: the scenario names its target")
    if the_scenario is not None and resume is not None:
        raise UserError("--resume and --scenario exclude each other: a resumed run keeps its target")
    traj = None
    if resume is not None:
        if task is not None:
            raise UserError("give TASK or --resume DIR, not both: a resumed run keeps its task")
        traj = r.resumable(resume)
        task = traj.meta.task
    task = task or (the_scenario.task if the_scenario is not None else None)
    if not task:
        raise UserError("missing TASK: say what the agent should do (or --scenario FILE, --resume DIR)")
    the_device = open_device(device or "desktop")  # a bad reference fails before a model loads
    if secrets and the_device.kind == "mobile":
        from pixelpilot.tools.android import AndroidDevice

        if isinstance(the_device, AndroidDevice):  # a password field shows its last character
            the_device.blur_passwords = True
    recorded = traj.meta.dialect if traj is not None else None
    fidelity = Fidelity.official() if official else Fidelity()
    the_dialect = get_dialect(dialect or recorded or default_dialect(model), fidelity)
    if traj is not None:
        r.check_fit(traj, the_dialect.name, the_device.kind)
    options: dict[str, Any] = {}
    if max_pixels is not None:
        if max_pixels < min_pixels:
            raise UserError(f"--max-pixels {max_pixels} is below --min-pixels {min_pixels}")
        options["pixels"] = PixelBudget(min_pixels, max_pixels)
    if compile_steps:
        options["compile"] = True
    the_model = load_model(model, **options)
    if traj is not None:
        _resuming(traj, the_model.name)
        if isinstance(the_model, ScriptedModel):  # its script holds the whole run's answers
            the_model.skip(r.consumed_outputs(traj))
    budgets = Budgets(max_steps, max_seconds, max_retries, max_repeats)
    if the_scenario is None:
        result = _record_run(
            task, the_model, the_device, the_dialect, budgets, out_dir, "run",
            the_guards, secrets=secrets, resume=traj,
        )  # fmt: skip
        raise typer.Exit(0 if result.status == "success" else 1)
    result = _run_on_scenario(
        the_scenario, task, the_model, the_dialect, budgets, out_dir, "run",
        the_guards, secrets=secrets,
    )  # fmt: skip
    raise typer.Exit(0 if result.status == "success" and result.achieved is not False else 1)


def _run_on_scenario(
    scenario: Any,
    task: str,
    model: Any,
    dialect: Any,
    budgets: Any,
    out_dir: Path,
    label: str,
    guards: Any = None,
    *,
    secrets: Any = None,
) -> Any:
    """Start the scenario's target (on a display of its size), run ``task`` on it with
    ``model`` and judge the run by the scenario's checks; the RunResult."""
    from pixelpilot.scenarios.runner import target_judge
    from pixelpilot.scenarios.targets import open_target

    screen = scenario.target.screen if scenario.target.kind == "desktop" else None
    with contextlib.ExitStack() as stack:
        if screen is not None:
            stack.enter_context(_display(*screen))
        try:
            target = stack.enter_context(open_target(scenario.target, name=scenario.name))
        except BaseException:
            model.close()
            raise
        return _record_run(
            task, model, contextlib.nullcontext(target.device),  # open_target opened it
            dialect, budgets, out_dir, label, guards, judge=target_judge(scenario.checks, target),
            meta_extra={"scenario": scenario.path, "target": scenario.target.model_dump()},
            secrets=secrets,
        )  # fmt: skip


def _resuming(traj: Any, model: str) -> None:
    last = traj.steps[-1].index if traj.steps else 0
    out.print(f"resuming {escape(traj.path)} after step {last} ({escape(traj.status)})")
    if model != traj.meta.model:
        out.print(f"[yellow]note:[/] recorded with {escape(traj.meta.model)}; going on with {escape(model)}")


def _record_run(
    task: str,
    model: Any,
    device: contextlib.AbstractContextManager[Any],
    dialect: Any,
    budgets: Any,
    out_dir: Path,
    label: str,
    guards: Any = None,
    *,
    secrets: Any = None,
    resume: Any = None,
    judge: Any = None,
    meta_extra: dict[str, Any] | None = None,
) -> Any:
    """Run ``task`` on ``device`` (opened here) with a line per step, record it under
    ``out_dir`` (or go on with the ``resume`` trajectory in its own directory), close the
    model, print the outcome (and the target's verdict, with a ``judge``); the RunResult.
    ``guards``: the policy, confirm hook and hotkeys (cli_control)."""
    from pixelpilot.agent.cli_control import Guards
    from pixelpilot.agent.loop import Agent
    from pixelpilot.agent.trajectory import DirectoryRecorder

    g = guards or Guards(hotkeys=False)
    where = Path(resume.path) if resume is not None else None
    rec = DirectoryRecorder(where or out_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{label}")
    try:
        with device as dev, claimed_device(dev, f"pixelpilot {label}"), listening(g, dev, out):
            agent = Agent(
                model=model, device=dev, dialect=dialect, budgets=budgets, recorder=rec,
                on_step=_progress, secrets=secrets, judge=judge, meta_extra=meta_extra,
                policy=g.policy, confirm=g.confirm, control=g.control,
            )  # fmt: skip
            result = agent.resume(resume) if resume is not None else agent.run(task)
    finally:
        model.close()
    _summary(result)
    return result


def _summary(result: Any) -> None:
    """How the run ended (the model's own claim for success), then whether the task was
    achieved by the target's real state, when something judged it."""
    colour = "green" if result.status == "success" else "red"
    line = f"[{colour}]{result.status}[/]: {escape(result.reason)}"
    out.print(line + (f" — answer: {escape(repr(result.answer))}" if result.answer else ""))
    if result.checks:
        held = sum(c.passed for c in result.checks)
        judged = f"{held} of {len(result.checks)} checks on the app's real state hold"
        if result.achieved:
            out.print(f"[green]task achieved[/]: {judged}")
        elif result.achieved is None:
            out.print(f"[yellow]task not judged[/]: {escape(result.checks[0].line)}")
        else:
            claim = " (whatever the model claimed)" if result.status == "success" else ""
            out.print(f"[red]task NOT achieved[/]{claim}: {judged}")
        for c in result.checks:
            if not c.passed:
                out.print(f"     [red]✗[/] {escape(c.line)}")
    if result.trajectory:
        out.print(f"trajectory: {escape(result.trajectory)}")


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
    argv = bare_option(sys.argv[1:] if argv is None else argv, "--ray", RAY_LOCAL)
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
