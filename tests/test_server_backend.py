"""The OpenAI-compatible server backend against real HTTP servers.

``tiny_server`` (conftest): a real ``transformers serve`` process serving the tiny Qwen2-VL
checkpoint (random weights, built into the session's temp dir). ``FakeServer``: a
real ``http.server`` in a thread that answers from a script (500s, garbage, slow answers,
refusals, JSON calls), for the failure paths a healthy model server never shows on demand.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image

from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.errors import ConfigError, ModelError
from pixelpilot.agent.geometry import PixelBudget, ScreenGeometry
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import DirectoryRecorder, load_trajectory
from pixelpilot.tools.desktop import DesktopDevice
from pixelpilot.vlm.base import MAX_NEW_TOKENS, Generation, Sampling
from pixelpilot.vlm.openai_server import OpenAIServerModel, from_reference
from pixelpilot.vlm.transformers_serve import TransformersServe

BUDGET = PixelBudget(min_pixels=3136, max_pixels=64 * 28 * 28)
"""Small, so that the tiny model on CPU answers in tens of milliseconds."""
GEOM = ScreenGeometry(1280, 800)
RESIZED = BUDGET.resize(1280, 800)
DESKTOP = frozenset({"click", "move", "drag", "scroll", "type", "hotkey", "finish", "wait"})
CTX = StepContext("desktop", DESKTOP, GEOM, RESIZED)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshot() -> Image.Image:
    img = Image.new("RGB", (GEOM.width, GEOM.height), "#eceff1")
    img.paste((21, 101, 192), (600, 380, 680, 420))
    return img


@pytest.fixture(scope="module")
def desktop(display: str) -> Iterator[DesktopDevice]:
    """One open desktop for the module: one X connection held throughout (Xvfb resets when its
    last client leaves, and refuses connections for a moment while it does)."""
    with DesktopDevice(display=display) as device:
        yield device


def served(server: TransformersServe, **kw: Any) -> OpenAIServerModel:
    opts: dict[str, Any] = {"pixels": BUDGET, "max_tokens": 24, "retries": 1, "backoff": 0.05}
    return OpenAIServerModel(server.url, server.model, **(opts | kw))


def test_generate_against_transformers_serve(tiny_server: TransformersServe) -> None:
    model = served(tiny_server)
    prompt = get_dialect("qwen25vl").build_prompt("Click the blue box", [], screenshot(), CTX)
    gen = model.generate(prompt)
    assert isinstance(gen, Generation) and isinstance(gen.text, str)
    assert gen.resized == RESIZED == (280, 168)
    assert gen.visual_tokens == (280 // 28) * (168 // 28) == 60
    # the server's own count: the image's 60 pads plus the text, and at most max_tokens out
    assert gen.prompt_tokens is not None and gen.prompt_tokens > 60
    assert gen.output_tokens is not None and 1 <= gen.output_tokens <= 24
    assert gen.timings["encode"] > 0 and gen.seconds > 0
    # transformers serve rejects unknown fields (422) and ignores response_format: auto steps
    # down to json_schema for a dialect with a JSON call form and stays there
    assert model.mode == "json_schema"
    again = model.generate(prompt)
    assert again.timings["encode"] == 0.0  # same screenshot object: encoded once per step
    assert again.text == gen.text  # temperature 0
    model.close()


def test_qwen2vl_against_transformers_serve_which_fails_on_stop_strings(tiny_server) -> None:
    """transformers serve 5.x answers 500 to a request with ``stop`` strings for a
    vision-language checkpoint; qwen2vl prompts carry them (✿RESULT✿, ✿RETURN✿)."""
    model = served(tiny_server, constrain="none")
    prompt = get_dialect("qwen2vl").build_prompt("Click the blue box", [], screenshot(), CTX)
    assert prompt.stop
    gen = model.generate(prompt)  # asked again without them, and cut here
    assert not any(s in gen.text for s in prompt.stop)
    assert model.generate(prompt).text == gen.text  # temperature 0; no stop strings sent now
    model.close()


def test_reference_without_model_uses_the_served_one(tiny_server: TransformersServe) -> None:
    model = from_reference(tiny_server.url, pixels=BUDGET, max_tokens=4)
    assert model.model == "" and model.name.endswith("#?")
    gen = model.generate(get_dialect("uitars").build_prompt("Click", [], screenshot(), CTX))
    assert model.model == tiny_server.model  # transformers serve lists the model directory
    assert gen.output_tokens is not None and gen.output_tokens <= 4
    assert model.mode == "none"  # UI-TARS has no JSON form; the grammar (if any) was refused
    model.close()


def test_agent_step_reasks_through_the_server(tiny_server: TransformersServe, desktop, tmp_path) -> None:
    """Random weights: the answers are invalid, so the loop re-asks with the reason, then fails.

    The server's own prompt-token count proves the re-ask carried the feedback text.
    """
    model = served(tiny_server)
    agent = Agent(
        model=model,
        device=desktop,
        dialect="qwen25vl",
        budgets=Budgets(max_steps=1, max_retries=1),
        recorder=DirectoryRecorder(tmp_path / "run"),
    )
    result = agent.run("Click the blue box")
    assert result.status == "failure", result.reason
    step = result.steps[0]
    first, second = step.attempts
    assert first.error is not None and second.error is not None
    assert first.prompt_tokens is not None and second.prompt_tokens is not None
    assert second.prompt_tokens > first.prompt_tokens  # "Your last answer was rejected: ..."
    assert first.visual_tokens == second.visual_tokens == 60
    traj = load_trajectory(tmp_path / "run")
    assert traj.status == "failure" and traj.meta.model == model.name
    assert [a.raw for a in traj.steps[0].attempts] == [first.raw, second.raw]
    model.close()


# -- a real scripted HTTP server ---------------------------------------------------------------
@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; str -> raw text
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def completion(text: str) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }


class FakeServer:
    """Answers POSTs with ``replies`` in order (the last one repeats); records each request."""

    def __init__(self, *replies: Reply, models: tuple[str, ...] = ("m",)) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[float, dict[str, Any]]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                i = len(owner.requests)
                owner.requests.append((time.monotonic(), body))
                reply = owner.replies[min(i, len(owner.replies) - 1)]
                time.sleep(reply.delay)
                data = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                with contextlib.suppress(OSError):  # the client may have timed out
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data.encode())))
                    self.end_headers()
                    self.wfile.write(data.encode())

            def do_GET(self) -> None:  # noqa: N802 - GET /v1/models
                data = json.dumps({"data": [{"id": m, "object": "model"} for m in models]})
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.block_on_close = False  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def gaps(self) -> list[float]:
        times = [t for t, _ in self.requests]
        return [b - a for a, b in zip(times, times[1:], strict=False)]


def fake_model(server: FakeServer, **kw: Any) -> OpenAIServerModel:
    opts: dict[str, Any] = {"pixels": BUDGET, "retries": 2, "backoff": 0.05, "timeout": 5}
    return OpenAIServerModel(server.url, "m", **(opts | kw))


def prompt_for(dialect: str = "qwen25vl"):
    return get_dialect(dialect).build_prompt("Click the blue box", [], screenshot(), CTX)


def test_5xx_is_retried_with_exponential_backoff() -> None:
    ok = Reply(body=completion("<tool_call>\n{}\n</tool_call>"))
    with FakeServer(Reply(500, {"error": "boom"}), Reply(503, "down"), ok) as srv:
        gen = fake_model(srv).generate(prompt_for())
    assert len(srv.requests) == 3 and gen.prompt_tokens == 11 and gen.output_tokens == 3
    assert srv.gaps[0] >= 0.05 and srv.gaps[1] >= 0.1  # backoff * 2**attempt
    assert gen.timings["backoff"] == pytest.approx(0.15)


def test_429_honours_retry_after() -> None:
    busy = Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "0.3"})
    with FakeServer(busy, Reply(body=completion("hi"))) as srv:
        gen = fake_model(srv).generate(prompt_for())
    assert gen.text == "hi" and srv.gaps[0] >= 0.3


@pytest.mark.parametrize(
    ("reply", "what"),
    [
        (Reply(body="<html>gateway says hi</html>"), "garbage"),
        (Reply(body={"object": "chat.completion", "choices": []}), "garbage"),
        (Reply(500, {"error": "CUDA out of memory"}), "HTTP 500 ('CUDA out of memory')"),
    ],
)
def test_garbage_and_5xx_end_in_one_clear_line(reply: Reply, what: str) -> None:
    with FakeServer(reply) as srv, pytest.raises(ModelError) as err:
        fake_model(srv).generate(prompt_for())
    msg = str(err.value)
    assert len(srv.requests) == 3  # retries=2
    assert msg.startswith(f"{srv.url}/chat/completions: ") and what in msg and "3 tries" in msg
    assert "\n" not in msg


def test_timeouts_are_retried_then_reported() -> None:
    with FakeServer(Reply(body=completion("late"), delay=1.0)) as srv:
        t0 = time.monotonic()
        with pytest.raises(
            ModelError, match=r"timed out after 0\.3 s: ReadTimeout \(2 tries\); .*raise timeout="
        ):
            fake_model(srv, timeout=0.3, retries=1).generate(prompt_for())
    assert len(srv.requests) == 2 and time.monotonic() - t0 < 1.5


def test_stop_strings_a_server_fails_on_are_applied_here() -> None:
    answer = "✿FUNCTION✿: finish\n✿ARGS✿: {}\n✿RESULT✿: made up\n✿RETURN✿: more"
    failing = Reply(500, {"error": "stop criteria need a tokenizer"})
    with FakeServer(failing, failing, Reply(body=completion(answer))) as server:
        model = fake_model(server, retries=1, constrain="none")
        prompt = prompt_for("qwen2vl")
        first = model.generate(prompt)
        second = model.generate(prompt)
    sent = ["stop" in body for _, body in server.requests]
    assert sent == [True, True, False, False]  # both tries with them, then never again
    assert first.text == second.text == "✿FUNCTION✿: finish\n✿ARGS✿: {}\n"
    # a server that fails with and without them is the first error, unchanged
    with FakeServer(failing) as server:
        with pytest.raises(ModelError, match="HTTP 500"):
            fake_model(server, retries=0, constrain="none").generate(prompt_for("qwen2vl"))
        assert ["stop" in body for _, body in server.requests] == [True, False]


def test_refusals_are_not_retried() -> None:
    p = prompt_for()
    p.grammar = 'start: "x"'  # auto steps down only for a refused constraint, not a bad key
    refuse = FakeServer(Reply(401, {"error": {"message": "bad key"}}))
    with refuse as srv, pytest.raises(ModelError, match="HTTP 401: 'bad key'; set the API key"):
        fake_model(srv).generate(p)
    assert len(srv.requests) == 1


def test_screenshot_is_shrunk_only_when_the_budget_shrinks_it() -> None:
    with FakeServer(Reply(body=completion("hi"))) as srv:
        gen = fake_model(srv, pixels=None).generate(prompt_for())  # the hub budget
    (part,) = [c for c in srv.requests[0][1]["messages"][-1]["content"] if c["type"] == "image_url"]
    sent = Image.open(io.BytesIO(base64.b64decode(part["image_url"]["url"].split(",", 1)[1])))
    assert sent.format == "JPEG" and sent.size == (1280, 800)  # as captured: servers round it
    assert gen.resized == (1288, 812) and gen.visual_tokens == 46 * 29


def test_text_only_prompt() -> None:
    p = prompt_for()
    p.messages[-1].content = [c for c in p.messages[-1].content if c["type"] != "image"]
    with FakeServer(Reply(body=completion("hi"))) as srv:
        gen = fake_model(srv).generate(p)
    assert gen.text == "hi" and gen.visual_tokens is None and gen.resized is None
    assert "image_url" not in json.dumps(srv.requests[0][1])


def test_auto_steps_down_when_the_server_refuses_a_grammar() -> None:
    p = prompt_for()
    p.grammar = 'start: "<tool_call>" /[^<]*/ "</tool_call>"'
    p.sampling = Sampling()  # no vLLM extras to step down from: the constraint alone
    refuse = Reply(422, {"detail": "Unexpected fields in the request: {'structured_outputs'}"})
    call = (
        '{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [154, 98]}}'
    )
    with FakeServer(refuse, Reply(body=completion(call))) as srv:
        model = fake_model(srv)
        gen = model.generate(p)
        model.generate(p)
    bodies = [b for _, b in srv.requests]
    assert (
        bodies[0]["structured_outputs"] == {"grammar": p.grammar} and bodies[0]["ebnf"] == p.grammar
    )
    assert "response_format" in bodies[1] and "structured_outputs" not in bodies[1]
    assert len(bodies) == 3 and "response_format" in bodies[2]  # the step down is remembered
    assert model.mode == "json_schema"
    # the JSON call is written as the dialect's text, and the dialect parses it
    assert gen.text == f"<tool_call>\n{call}\n</tool_call>"
    action = get_dialect("qwen25vl").parse(gen.text, CTX)
    assert action.kind == "click" and (action.point.x, action.point.y) == (154, 98)


def test_explicit_grammar_refused_is_an_error() -> None:
    p = prompt_for()
    p.grammar = 'start: "x"'
    p.sampling = Sampling()  # no vLLM extras to step down from: the constraint alone
    refuse = FakeServer(Reply(400, {"error": {"message": "grammar backend xgrammar failed"}}))
    with refuse as srv, pytest.raises(ModelError, match="refused constrain='grammar'"):
        fake_model(srv, constrain="grammar").generate(p)
    assert len(srv.requests) == 1


def test_qwen25vl_request_carries_the_checkpoints_decoding() -> None:
    """The cookbook passes only max_new_tokens=2048, so the checkpoint's generation config
    decodes (temperature 1e-06, repetition_penalty 1.05): both go in the request, the penalty
    as vLLM's extra parameter."""
    call = '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click"}}\n</tool_call>'
    with FakeServer(Reply(body=completion(call))) as srv:
        fake_model(srv).generate(prompt_for())
    body = srv.requests[0][1]
    assert (body["temperature"], body["repetition_penalty"], body["max_tokens"]) == (
        1e-06, 1.05, 2048,
    )  # fmt: skip
    assert "top_k" not in body and "stop" not in body


def test_request_shape_and_json_schema() -> None:
    with FakeServer(Reply(body=completion("✿FUNCTION✿: finish\n✿ARGS✿: {}"))) as srv:
        model = fake_model(srv, constrain="json_schema", image_format="png", api_key="k3y")
        p = prompt_for("qwen2vl")
        model.generate(p)
    body = srv.requests[0][1]
    assert body["model"] == "m" and body["max_tokens"] == MAX_NEW_TOKENS
    # Qwen2-VL-Instruct's generation_config (top_k 1: greedy) and Qwen-Agent's stop words
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.01, 0.001, 1)
    assert body["stop"] == ["✿RESULT✿", "✿RETURN✿"] and "continue_final_message" not in body
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert isinstance(body["messages"][0]["content"], str)  # text-only: plain string
    (image_part,) = [c for c in body["messages"][-1]["content"] if c["type"] == "image_url"]
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.size == RESIZED  # prescaled to the budget: the server's resize is a no-op
    schema = body["response_format"]["json_schema"]["schema"]
    names = {branch["properties"]["name"]["const"] for branch in schema["anyOf"]}
    assert names == set(DESKTOP)  # the offered tools, exactly
    click = next(b for b in schema["anyOf"] if b["properties"]["name"]["const"] == "click")
    assert click["properties"]["arguments"]["properties"]["point"]["items"]["maximum"] == 1000
    assert prompt_for("uitars").json_form is None
    with pytest.raises(ConfigError, match="no JSON call form"):
        fake_model(srv, constrain="json_schema").generate(prompt_for("uitars"))


def test_reference_needs_a_model_when_the_server_has_several() -> None:
    with (
        FakeServer(Reply(body=completion("x")), models=("a", "b")) as srv,
        pytest.raises(ModelError, match=r"lists 2 models \(a, b\); name one: openai:URL#MODEL"),
    ):
        from_reference(srv.url).generate(prompt_for())
    assert srv.requests == []  # never asked a model it could not name
    with pytest.raises(ConfigError, match="write openai:URL#MODEL"):
        from_reference("#model")
    assert (
        from_reference("http://h:1/v1#Qwen/Qwen2-VL-7B-Instruct").model
        == "Qwen/Qwen2-VL-7B-Instruct"
    )


@pytest.mark.parametrize("dialect", ["qwen2vl", "qwen25vl"])
def test_json_schema_accepts_what_the_dialect_writes(dialect: str) -> None:
    """The JSON call schema admits every call the dialect writes, and no off-image point."""
    jsonschema = pytest.importorskip("jsonschema", reason="validates the generated schema")
    from pixelpilot.agent.actions import Click, Finish, Hotkey, Point, Scroll, TypeText

    d = get_dialect(dialect)
    form = prompt_for(dialect).json_form
    assert form is not None
    schema, to_text = form.schema, form.to_text
    x, y = (500, 500) if d.space == "norm1000" else (154, 98)
    actions = [
        Click(point=Point(x=x, y=y, space=d.space), button="right"),
        TypeText(text="Zoë"),
        Hotkey(keys=["ctrl", "c"]),
        Scroll(direction="down", amount=3, point=Point(x=x, y=y, space=d.space)),
        Finish(status="success"),
    ]
    for action in actions:
        text = d.format(action, CTX)
        body = text.split("✿ARGS✿: ")[-1] if dialect == "qwen2vl" else text.split("\n")[1]
        call = json.loads(body)
        if dialect == "qwen2vl":
            call = {"name": text.split("\n")[0].split(": ")[1], "arguments": call}
        jsonschema.validate(call, schema)
        assert d.parse(to_text(call["name"], call["arguments"]), CTX) == action
    off = {"name": "click" if dialect == "qwen2vl" else "computer_use",
           "arguments": {"point": [1001, 5]} if dialect == "qwen2vl"
           else {"action": "left_click", "coordinate": [RESIZED[0] + 1, 5]}}  # fmt: skip
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(off, schema)


def test_bad_urls_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="bad server URL"):
        OpenAIServerModel("localhost:8000", "m")
    assert OpenAIServerModel("http://h:8000/", "m").url == "http://h:8000/v1/chat/completions"
    assert OpenAIServerModel("http://h/proxy/v1", "m").url == "http://h/proxy/v1/chat/completions"


# -- the run ends with status error, trajectory intact -----------------------------------------
def test_server_down_ends_the_run_with_error(desktop, tmp_path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    model = OpenAIServerModel(url, "m", pixels=BUDGET, retries=2, backoff=0.05)
    agent = Agent(
        model=model, device=desktop, dialect="qwen2vl", recorder=DirectoryRecorder(tmp_path / "r")
    )
    t0 = time.monotonic()
    result = agent.run("Click OK")
    assert time.monotonic() - t0 >= 0.15  # 0.05 + 0.1 of backoff
    assert result.status == "error"
    assert result.reason.startswith(f"{url}/v1/chat/completions: cannot connect")
    assert "(3 tries); is the server running?" in result.reason
    traj = load_trajectory(tmp_path / "r")
    assert traj.status == "error" and len(traj.steps) == 1
    assert traj.steps[0].error == result.reason and traj.screenshot_path(traj.steps[0]) is not None


def test_garbage_server_ends_the_run_with_error(desktop, tmp_path) -> None:
    with FakeServer(Reply(body="not json at all")) as srv:
        agent = Agent(
            model=fake_model(srv, retries=1),
            device=desktop,
            dialect="uitars",
            recorder=DirectoryRecorder(tmp_path / "r"),
        )
        result = agent.run("Click OK")
    assert result.status == "error" and "answered garbage" in result.reason
    assert len(srv.requests) == 2
    assert load_trajectory(tmp_path / "r").status == "error"


def test_a_continued_turn_with_several_screenshots() -> None:
    """qwen2vl after two steps: three screenshots, the assistant turn continued through vLLM's
    continue_final_message; a server that refuses the extra fields gets Qwen-Agent's own
    OpenAI-server layout instead (the turn merged into the user message)."""
    from pixelpilot.agent.dialects import Turn

    shots = [screenshot(), screenshot(), screenshot()]
    history = [
        Turn(raw='✿FUNCTION✿: click\n✿ARGS✿: {"point": [500, 500]}', image=shots[0]),
        Turn(raw=': \n✿FUNCTION✿: type\n✿ARGS✿: {"text": "hi"}', image=shots[1], note="ok"),
    ]
    p = get_dialect("qwen2vl").build_prompt("Click the blue box", history, shots[2], CTX)
    assert p.continue_final and len(p.images) == 3
    refuse = Reply(422, {"detail": "Unexpected fields: {'continue_final_message', 'top_k'}"})
    answer = Reply(body=completion(': \n✿FUNCTION✿: finish\n✿ARGS✿: {}'))
    with FakeServer(Reply(body=completion("x")), refuse, answer) as srv:
        vllm = fake_model(srv, constrain="none")
        vllm.generate(p)
        other = fake_model(srv, constrain="none")
        gen = other.generate(p)
        again = other.generate(p)
    first, refused, merged, later = (b for _, b in srv.requests)
    assert first["continue_final_message"] and first["add_generation_prompt"] is False
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert refused == first  # the same request, refused
    assert "continue_final_message" not in merged and "top_k" not in merged
    assert [m["role"] for m in merged["messages"]] == ["system", "user"]
    parts = merged["messages"][1]["content"]
    assert {"type": "text", "text": "\n\n"} in parts  # Qwen-Agent's join
    assert sum(part["type"] == "image_url" for part in parts) == 3
    assert later == merged  # remembered: no second refusal
    assert gen.timings["encode"] > 0 and again.timings["encode"] == 0.0  # each image once
    assert get_dialect("qwen2vl").parse(gen.text, CTX).kind == "finish"
