"""Secrets: values the device types that the model never sees and no record keeps.

The model knows only the NAMES (the task text lists them) and writes a placeholder in typed
text: ``<secret>PASSWORD</secret>``. ``Secrets.execute`` puts the value into the action right
before the device runs it and hands back what was done in placeholder form; ``Secrets.recorder``
wraps a Recorder so every record (run.json, steps.jsonl, result.json, and the steps and result
the caller gets back) holds the placeholder instead of the value. Reports, GIFs, exports,
evaluations and later prompts are built from those records, so none of them can hold it.

Values come from ``--secret NAME=VALUE``, ``--secret NAME=env:VAR`` (the value stays out of
shell history), ``--secrets-file FILE`` (``.env`` lines or a YAML mapping) or
``Agent(secrets={"NAME": "value"})``.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from pixelpilot.agent.actions import Action
from pixelpilot.agent.errors import ActionRejected, ConfigError, PixelPilotError
from pixelpilot.agent.trajectory import Recorder, RunMeta, RunResult, StepRecord, Trajectory
from pixelpilot.tools.base import Device, Executed

__all__ = ["PLACEHOLDER", "Secrets", "placeholder", "task_for_model"]

PLACEHOLDER = re.compile(r"<secret>([^<>]{0,64})</secret>")
"""What the model writes where a secret's value goes; group 1 is the name."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
MIN_LENGTH = 4
"""Shorter values cannot be told apart from other text in records (every 'ab' would go)."""
REDACTED = "<redacted: typed a secret>"
M = TypeVar("M", bound=BaseModel)


def task_for_model(task: str, names: Sequence[str]) -> str:
    """``task`` with a short note naming the secrets (a project addition), as the loop shows it
    to the model; unchanged without secrets. Export and evaluation rebuild it from run.json."""
    if not names:
        return task
    return (
        f"{task}\n\nTo type a secret, write <secret>NAME</secret> in the text; its value is "
        f"typed for you and never shown. Secrets: {', '.join(names)}."
    )


def placeholder(name: str) -> str:
    """``<secret>NAME</secret>``."""
    return f"<secret>{name}</secret>"


class Secrets:
    """Secret names -> values for one run. ``repr`` and ``str`` show the names only."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values: dict[str, str] = {}
        for name, value in (values or {}).items():
            self._add(name, value)

    @classmethod
    def of(cls, secrets: Secrets | Mapping[str, str] | None) -> Secrets:
        return secrets if isinstance(secrets, Secrets) else cls(secrets)

    @classmethod
    def from_cli(
        cls,
        specs: Sequence[str] = (),
        files: Sequence[str | os.PathLike[str]] = (),
        environ: Mapping[str, str] | None = None,
    ) -> Secrets:
        """From ``--secrets-file FILE`` options, then ``--secret NAME=VALUE`` /
        ``NAME=env:VAR`` options (a later one replaces an earlier value of the same name)."""
        env = os.environ if environ is None else environ
        pairs: list[tuple[str, str]] = []
        for file in files:
            pairs.extend(_read_file(Path(file)))
        for spec in specs:
            name, sep, value = spec.partition("=")
            if not sep:
                raise ConfigError(
                    f"--secret {name.strip()!r}: write NAME=VALUE or NAME=env:VARIABLE"
                )
            if value.startswith("env:"):
                var = value[4:]
                if var not in env:
                    raise ConfigError(
                        f"--secret {name}=env:{var}: the environment variable {var} is not set"
                    )
                value = env[var]
            pairs.append((name.strip(), value))
        out = cls()
        for name, value in pairs:
            out._values.pop(name, None)
            out._add(name, value)
        return out

    def _add(self, name: str, value: str) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(
                f"secret name {name!r}: use letters, digits, '_', '.' or '-' "
                "(at most 64, starting with a letter or '_')"
            )
        if name in self._values:
            raise ConfigError(f"secret {name} is given twice")
        if not isinstance(value, str) or len(value) < MIN_LENGTH:
            raise ConfigError(
                f"secret {name}: the value must be text of at least {MIN_LENGTH} characters "
                "(a shorter one could not be told apart from other text when it is redacted)"
            )
        names = [*self._values, name]
        ours = [placeholder(n) for n in names] + [REDACTED, task_for_model("", names)]
        ours += _record_words()
        if any(value in word for word in ours):
            raise ConfigError(
                f"secret {name}: the value is part of a word pixelpilot's records use (an "
                "action kind, a status, the placeholder); it could not be redacted"
            )
        self._values[name] = value

    # -- what the model is told ---------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def __repr__(self) -> str:
        return f"Secrets({', '.join(self._values)})"

    __str__ = __repr__

    def task_text(self, task: str) -> str:
        """``task`` as the model reads it: with a note naming the secrets."""
        return task_for_model(task, self.names)

    # -- the device side ----------------------------------------------------------------------
    def fill(self, action: Action) -> Action:
        """``action`` with each placeholder in typed text replaced by its value (the same
        object when there is none). ActionRejected, for the model, on an unknown name."""
        if not self._values or action.kind != "type" or "<secret>" not in action.text:
            return action

        def value(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self._values:
                raise ActionRejected(
                    f"there is no secret named {name!r}; the secrets are: {', '.join(self.names)}"
                )
            return self._values[name]

        return action.model_copy(update={"text": PLACEHOLDER.sub(value, action.text)})

    def missing(self, actions: Iterable[Action | None]) -> list[str]:
        """Secret names that typed text in ``actions`` uses and this set lacks (for replay)."""
        out: list[str] = []
        for a in actions:
            if a is not None and a.kind == "type":
                out += [n for n in PLACEHOLDER.findall(a.text) if n not in self._values]
        return sorted(set(out))

    def execute(self, device: Device, action: Action) -> Executed:
        """Run ``action`` on ``device`` with the values filled in; what was done comes back in
        placeholder form (commands that typed a secret are not kept: they may hold it encoded,
        e.g. ADBKeyboard's base64), and so does the message of any error."""
        if not self._values:
            return device.execute(action)
        filled = self.fill(action)
        try:
            done = device.execute(filled)
        except PixelPilotError as exc:
            exc.args = tuple(self.redact(a) for a in exc.args)
            raise
        if filled is action:
            return self.redact(done)
        commands: list[list[Any]] = [
            [self.redact(c[0]) if c and isinstance(c[0], str) else "?", REDACTED]
            for c in done.commands
        ]
        return done.model_copy(
            update={"action": action, "commands": commands, "note": self.redact(done.note)}
        )

    # -- records ------------------------------------------------------------------------------
    def redact(self, value: Any) -> Any:
        """``value`` with every secret value replaced by its placeholder: in a string, in
        nested dicts/lists, in a pydantic model (validated again)."""
        if not self._values:
            return value
        if isinstance(value, str):
            for name, secret in sorted(self._values.items(), key=lambda kv: -len(kv[1])):
                if secret in value:
                    value = value.replace(secret, placeholder(name))
            return value
        if isinstance(value, BaseModel):
            return type(value).model_validate(self.redact(value.model_dump()))
        if isinstance(value, dict):  # keys are field and element names, never typed text
            return {k: self.redact(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.redact(v) for v in value)
        return value

    def recorder(self, inner: Recorder) -> Recorder:
        """``inner`` behind a wrapper that redacts everything it is given (``inner`` itself
        when there are no secrets)."""
        return _RedactingRecorder(inner, self) if self._values else inner


class _RedactingRecorder(Recorder):
    """Passes redacted copies to ``inner``: no record ever holds a secret's value."""

    def __init__(self, inner: Recorder, secrets: Secrets) -> None:
        self.inner, self.secrets = inner, secrets

    def _start(self, meta: RunMeta) -> None:
        self.inner.start(self.secrets.redact(meta))

    def _append(self, step: StepRecord, image: Any) -> StepRecord:
        return self.inner.append(self.secrets.redact(step), image)

    def _finish(self, result: RunResult) -> RunResult:
        return self.inner.finish(self.secrets.redact(result))

    def _resume(self, trajectory: Trajectory, meta: RunMeta) -> None:
        self.inner.resume(trajectory, self.secrets.redact(meta))


@functools.cache
def _record_words() -> frozenset[str]:
    """Every fixed string a record may hold (action kinds, enum values, statuses): a secret
    inside one of them could not be redacted without breaking the record."""
    words: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "enum":
                    words.update(v for v in value if isinstance(v, str))
                elif key == "const" and isinstance(value, str):
                    words.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for model in (StepRecord, RunResult, RunMeta):
        walk(model.model_json_schema())
    return frozenset(words)


def _read_file(file: Path) -> list[tuple[str, str]]:
    """(name, value) pairs of a secrets file: a YAML mapping (.yaml/.yml) or ``.env`` lines
    (``NAME=VALUE``, quotes and escapes as python-dotenv reads them, no ${VAR} expansion)."""
    if not file.is_file():
        raise ConfigError(f"--secrets-file {file}: no such file")
    if file.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--secrets-file {file}: not YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"--secrets-file {file}: write a mapping of NAME: value")
        bad = [k for k, v in data.items() if not isinstance(v, str)]
        if bad:
            raise ConfigError(
                f"--secrets-file {file}: the value of {bad[0]} is not text; quote it "
                "(YAML reads 0123 as a number)"
            )
        return [(str(k), v) for k, v in data.items()]
    from dotenv import dotenv_values

    values = dotenv_values(file, interpolate=False, encoding="utf-8")
    empty = [k for k, v in values.items() if v is None]
    if empty:
        raise ConfigError(f"--secrets-file {file}: {empty[0]} has no value; write NAME=VALUE")
    return [(k, v) for k, v in values.items() if v is not None]
