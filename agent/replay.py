"""Re-execute a recorded trajectory's executed actions on a device.

Only the recorded actions run, planned again by the device given (the recorded commands are
never executed); the device is one the caller chose, never anything the trajectory names.
Typed text holding ``<secret>NAME</secret>`` gets its value from ``secrets``.
"""

from __future__ import annotations

from collections.abc import Callable

from pixelpilot.agent.errors import UserError
from pixelpilot.agent.evaluate import geometry_of
from pixelpilot.agent.geometry import to_device
from pixelpilot.agent.secrets import Secrets
from pixelpilot.agent.trajectory import StepRecord, Trajectory
from pixelpilot.tools.base import Device, Executed


def replay(
    trajectory: Trajectory,
    device: Device,
    on_step: Callable[[StepRecord, Executed], None] | None = None,
    *,
    secrets: Secrets | None = None,
) -> list[Executed]:
    """Execute every step that was executed in the recording, in order, waiting for the screen
    to settle before each. On a screen of another size, the model's own action is mapped onto
    the new screen (same relative position) instead of reusing the recorded pixels."""
    done = []
    for step in trajectory.steps:
        if step.executed is None or step.device_action is None:
            continue
        obs = device.observe()
        action = step.device_action
        recorded = geometry_of(step) if step.geometry else None
        if recorded is not None and (recorded.width, recorded.height) != (
            obs.geometry.width,
            obs.geometry.height,
        ):
            if step.action is None or step.resized is None:
                raise UserError(f"step {step.index}: no model action to map onto this screen")
            action = to_device(step.action, obs.geometry, step.resized)
        executed = (secrets or Secrets()).execute(device, action)
        done.append(executed)
        if on_step is not None:
            on_step(step, executed)
    return done
