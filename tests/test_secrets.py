"""Secrets: the model writes <secret>NAME</secret>, the device types the value, and no byte a
run writes (records, report, GIF, export, evaluation, replay, stdout, stderr) holds it."""

from __future__ import annotations

import base64
import html
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pixelpilot.agent.actions import Click, TypeText
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.errors import ActionRejected, ConfigError
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry, from_screen
from pixelpilot.agent.loop import Agent
from pixelpilot.agent.secrets import REDACTED, Secrets
from pixelpilot.agent.trajectory import DirectoryRecorder
from pixelpilot.scenarios.fixture import FixtureApp
from pixelpilot.tools.base import Executed
from pixelpilot.vlm.scripted import ScriptedModel

VALUE = "Hunter2-s3cr3t ë€ $(id) 'q'"
GEOM = ScreenGeometry(1280, 800)
PASSWORD = (1080, 160)  # the fixture app's password field (it shows dots)
SUBMIT = (510, 280)
CLI = [sys.executable, "-m", "pixelpilot.agent.cli"]


def click(x: int, y: int) -> str:
    ctx = StepContext("desktop", frozenset({"click"}), GEOM, HUB_PIXELS.resize(1280, 800))
    return get_dialect("qwen2vl").format(Click(point=from_screen(x, y, "norm1000", GEOM)), ctx)


SCRIPT = [
    click(*PASSWORD),
    '✿FUNCTION✿: type\n✿ARGS✿: {"text": "<secret>PW</secret>"}',
    click(*SUBMIT),
    '✿FUNCTION✿: finish\n✿ARGS✿: {"answer": "signed in"}',
]


def forms(value: str) -> list[bytes]:
    """Ways a value could be written: UTF-8, JSON with and without \\u escapes, HTML, base64,
    and its longest ASCII run on its own (catches any escaping of the rest)."""
    ascii_run = max("".join(c if c.isascii() else "\0" for c in value).split("\0"), key=len)
    return [
        value.encode(),
        json.dumps(value)[1:-1].encode(),
        json.dumps(value, ensure_ascii=False)[1:-1].encode(),
        html.escape(value).encode(),
        base64.b64encode(value.encode()),
        ascii_run.encode(),
    ]


def leaks(root: Path, skip: set[Path], streams: list[str]) -> tuple[int, int, list[str]]:
    """(files scanned, bytes scanned, where a form of VALUE was found)."""
    found, files, size = [], 0, 0
    for path in sorted(root.rglob("*")):
        if path.is_file() and path not in skip:
            data = path.read_bytes()
            files, size = files + 1, size + len(data)
            found += [f"{path} ({f!r})" for f in forms(VALUE) if f in data]
    for n, text in enumerate(streams):
        size += len(text.encode())
        found += [f"stream {n} ({f!r})" for f in forms(VALUE) if f in text.encode()]
    return files, size, found


# -- values in, names out ------------------------------------------------------------------------
def test_secret_values_from_options_env_and_files(tmp_path: Path) -> None:
    env_file = tmp_path / "s.env"
    env_file.write_text('A="quoted value"\nexport B=b-value-${HOME}\n# comment\n', encoding="utf-8")
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text("C: 'c-value'\n", encoding="utf-8")
    s = Secrets.from_cli(
        ["D=d-value", "E=env:MY_VAR", "A=a-replaced"], [env_file, yaml_file],
        environ={"MY_VAR": "from-the-env"},
    )  # fmt: skip
    assert s.names == ("B", "C", "D", "E", "A")
    assert s.fill(TypeText(text="<secret>B</secret>/<secret>E</secret>")).text == (
        "b-value-${HOME}/from-the-env"
    )
    assert repr(s) == str(s) == "Secrets(B, C, D, E, A)"
    assert "Secrets: B, C, D, E, A." in s.task_text("Sign in")


@pytest.mark.parametrize(
    ("specs", "content", "message"),
    [
        (["PW"], None, "write NAME=VALUE"),
        (["PW=env:NOPE_NOT_SET"], None, "NOPE_NOT_SET is not set"),
        (["PW=abc"], None, "at least 4 characters"),
        (["1x=abcd"], None, "secret name '1x'"),
        (["PW=click"], None, "could not be redacted"),
        (["PW=secret"], None, "could not be redacted"),
        ([], "PW: 0123\n", "quote it"),
        ([], "- a\n", "mapping of NAME: value"),
    ],
)
def test_bad_secrets_say_what_to_do(tmp_path, specs, content, message) -> None:
    files = []
    if content is not None:
        files = [tmp_path / "s.yaml"]
        files[0].write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as err:
        Secrets.from_cli(specs, files, environ={})
    assert "abcd" not in str(err.value) or "1x" in specs[0]  # a value is never repeated


def test_fill_and_redact() -> None:
    s = Secrets({"PW": VALUE})
    t = TypeText(text="user\t<secret>PW</secret>\n")
    assert s.fill(t).text == f"user\t{VALUE}\n" and s.fill(TypeText(text="plain")).text == "plain"
    with pytest.raises(ActionRejected, match="no secret named 'OTHER'; the secrets are: PW"):
        s.fill(TypeText(text="<secret>OTHER</secret>"))
    done = Executed(
        action=s.fill(t), commands=[["am", "broadcast", base64.b64encode(b"x").decode()]]
    )
    assert s.redact({"a": [f"x{VALUE}y"], "k": 1}) == {"a": ["x<secret>PW</secret>y"], "k": 1}
    assert s.redact(done).action.text == "user\t<secret>PW</secret>\n"
    assert Secrets().fill(TypeText(text="<secret>PW</secret>")).text == "<secret>PW</secret>"
    assert s.missing([t, TypeText(text="<secret>X</secret>"), None]) == ["X"]


# -- the loop, in process -------------------------------------------------------------------------
def test_the_device_types_the_value_the_model_and_the_records_never_see_it(
    fixture_app: FixtureApp, desktop, tmp_path: Path
) -> None:
    model = ScriptedModel(SCRIPT)
    agent = Agent(
        model=model, device=desktop, dialect="qwen2vl", secrets={"PW": VALUE},
        recorder=DirectoryRecorder(tmp_path / "run"),
    )  # fmt: skip
    result = agent.run("Sign in")
    assert result.status == "success", result.reason
    fixture_app.wait_for(lambda s: s["password"] == VALUE and s["submit_count"] == 1)
    typed = result.steps[1]
    assert typed.action.text == typed.device_action.text == "<secret>PW</secret>"
    assert typed.executed.action.text == "<secret>PW</secret>"
    assert typed.executed.commands == [["xtest.type", REDACTED]]
    prompts = json.dumps([[m.text for m in p.messages] for p in model.prompts], ensure_ascii=False)
    assert VALUE not in prompts and "Secrets: PW." in prompts
    assert all(p.meta["ctx"].secrets == ("PW",) for p in model.prompts)
    assert VALUE not in result.model_dump_json()
    files, _, found = leaks(tmp_path / "run", set(), [])
    assert files >= 7 and found == []


# -- everything a user runs, as subprocesses -------------------------------------------------------
def test_no_byte_written_by_run_view_gif_export_eval_replay_holds_the_value(
    display: str, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    script = inputs / "script.yaml"
    script.write_text(yaml.safe_dump(SCRIPT, allow_unicode=True), encoding="utf-8")
    secrets_file = inputs / "secrets.yaml"
    secrets_file.write_text(yaml.safe_dump({"OTHER": "other-secret-value"}), encoding="utf-8")
    env = {**os.environ, "PP_TEST_PW": VALUE}
    out = tmp_path / "out"
    streams: list[str] = []

    def cli(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=180)
        streams.extend([r.stdout, r.stderr])
        assert r.returncode == 0, r.stdout + r.stderr
        return r

    with FixtureApp() as app:
        cli("run", "Sign in", "--model", f"scripted:{script}", "--dialect", "qwen2vl",
            "--secret", "PW=env:PP_TEST_PW", "--secrets-file", str(secrets_file),
            "--out", str(out / "runs"))  # fmt: skip
        app.wait_for(lambda s: s["password"] == VALUE and s["submit_count"] == 1)
        (run,) = (out / "runs").iterdir()
        cli("view", str(run), "--gif", str(out / "run.gif"))
        cli("view", str(run), "--out", str(out / "linked.html"), "--link")
        cli("export", str(run), "--out", str(out / "sft"), "--all", "--keep-retried")
        cli("eval", str(run), "--model", f"scripted:{script}", "--json", str(out / "eval.json"))
        cli("replay", str(run), "--device", "desktop", "--secret", "PW=env:PP_TEST_PW")
        # typed again where the replayed click put the caret
        app.wait_for(
            lambda s: sorted(s["password"]) == sorted(VALUE * 2) and s["submit_count"] == 2
        )
    assert "<secret>PW</secret>" in streams[0]  # the step line shows the placeholder
    scored = json.loads((out / "eval.json").read_text())["steps"]
    assert len(scored) == 4 and all(s["exact"] for s in scored)  # the typed step included
    sft = (out / "sft" / "data.jsonl").read_text(encoding="utf-8")
    assert "Secrets: OTHER, PW." in sft and "<secret>PW</secret>" in sft  # as the model saw it
    assert (out / "run.gif").exists()
    control = inputs / "control.json"  # the grep finds the value where it is written
    control.write_text(json.dumps({"pw": VALUE}), encoding="utf-8")
    assert leaks(inputs, set(), [])[2] and leaks(out, set(), [json.dumps(VALUE)])[2]
    files, size, found = leaks(tmp_path, {script, secrets_file, control}, streams)
    print(
        f"secret-leak grep: {files} files, {size} bytes, {len(streams)} streams, {len(found)} hits"
    )
    assert found == [] and files >= 14
