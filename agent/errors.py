"""pixelpilot's one error tree, split by who can fix the problem.

    PixelPilotError
    ├── ModelRetry                 the model's fault: the message goes back to the model
    │   ├── ParseError             raw text is not one valid call in the dialect
    │   └── ActionRejected         a well-formed call that cannot be carried out as asked
    │       ├── PointOutOfBounds   a point outside the screen (never clamped silently)
    │       └── ActionDenied       the run's policy refused it
    ├── UserError                  the developer's or user's fault: one line, non-zero exit
    │   ├── ConfigError            a bad option, model reference, dialect or device name
    │   └── ScenarioError          a scenario file that does not load or does not fit
    ├── DeviceError                the target's fault: named, with what to do
    │   ├── DeviceNotConnected     used before connect() or after close()
    │   ├── DeviceLost             the display/device went away mid-run
    │   ├── DeviceBusy             another pixelpilot process holds the display/device
    │   ├── UnsupportedAction      this device cannot do that kind of action
    │   └── FailSafeTriggered      pyautogui's corner fail-safe fired: the human took over
    ├── ModelError                 the model backend failed (not its output: the backend)
    │   └── ScriptExhausted        a scripted model ran out of outputs
    └── HumanControl               a person at the machine intervened (hotkeys, RunControl)
        ├── StoppedByUser          the kill switch: the run ends at once (status error)
        └── UserTookOver           the pause switch: the agent stops acting until resumed

Messages are one line. A ``ModelRetry`` message is written for the model to read.
"""

from __future__ import annotations

__all__ = [
    "ActionDenied",
    "ActionRejected",
    "ConfigError",
    "DeviceBusy",
    "DeviceError",
    "DeviceLost",
    "DeviceNotConnected",
    "FailSafeTriggered",
    "HumanControl",
    "ModelError",
    "ModelRetry",
    "ParseError",
    "PixelPilotError",
    "PointOutOfBounds",
    "ScenarioError",
    "ScriptExhausted",
    "StoppedByUser",
    "UnsupportedAction",
    "UserError",
    "UserTookOver",
]


class PixelPilotError(Exception):
    """Base of every error pixelpilot raises on purpose."""


class ModelRetry(PixelPilotError):
    """The model's output cannot be executed; ``str(err)`` is sent back to the model."""


class ParseError(ModelRetry):
    """Raw model text is not exactly one valid call in the dialect."""


class ActionRejected(ModelRetry):
    """A valid call that cannot be carried out as asked."""


class PointOutOfBounds(ActionRejected):
    """A point lies outside the screen or image; it is refused, never clamped."""


class ActionDenied(ActionRejected):
    """The run's policy refused the action."""


class UserError(PixelPilotError):
    """Something the developer or user must fix: bad option, file or reference."""


class ConfigError(UserError):
    """A bad option, model reference, dialect or device name."""


class ScenarioError(UserError):
    """A scenario file that cannot be loaded or run as written."""


class DeviceError(PixelPilotError):
    """The target device failed; the run ends with its trajectory intact."""


class DeviceNotConnected(DeviceError):
    """The device was used before it was opened or after it was closed."""


class DeviceLost(DeviceError):
    """The device (display, phone, simulator) went away during the run."""


class DeviceBusy(DeviceError):
    """Another pixelpilot process (a worker, a run) holds this display or device."""


class UnsupportedAction(DeviceError):
    """The device cannot perform this kind of action."""


class FailSafeTriggered(DeviceError):
    """pyautogui's fail-safe fired (pointer in a screen corner): a human took over."""


class ModelError(PixelPilotError):
    """The model backend itself failed (not the content of its output)."""


class ScriptExhausted(ModelError):
    """A scripted model was asked for more outputs than its script holds."""


class HumanControl(PixelPilotError):
    """A person at the machine intervened; raised by ``RunControl.check`` between stages of a
    step and between the chunks of long actions (typing, drags, waits)."""


class StoppedByUser(HumanControl):
    """The kill switch was flipped: the run ends at once with status error."""


class UserTookOver(HumanControl):
    """The pause switch was flipped: the agent stops acting until the person resumes it."""
