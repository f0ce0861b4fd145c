"""Re-execute a recorded trajectory's executed actions on a device."""

from __future__ import annotations

from collections.abc import Callable

from pixelpilot.agent.geometry import ScreenGeometry, to_device
from pixelpilot.agent.trajectory import StepRecord, Trajectory
from pixelpilot.tools.base import Device, Executed


def replay(
    trajectory: Trajectory,
    device: Device,
    on_step: Callable[[StepRecord, Executed], None] | None = None,
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
        recorded = ScreenGeometry(**step.geometry) if step.geometry else None
        if recorded is not None and (recorded.width, recorded.height) != (
            obs.geometry.width,
            obs.geometry.height,
        ):
            action = to_device(step.action, obs.geometry, step.resized)
        executed = device.execute(action)
        done.append(executed)
        if on_step is not None:
            on_step(step, executed)
    return done
