"""A VisionModel behind an OpenAI-compatible chat completions server (vLLM, SGLang,
``transformers serve``).

One step: the screenshot is shrunk to the pixel budget here when the budget shrinks it
(``prescale``), encoded once (JPEG q95 4:4:4 by default, PNG on request) and sent as a data URL in an ``image_url`` part; the
answer's text goes to the loop, whose ``dialect.parse`` is the validator, so an invalid answer
comes back as a ModelRetry and the loop re-asks with the reason (a new request, the same
encoded image).

Constraints (``constrain``), from strongest to none:

- ``grammar``: the dialect's Lark grammar (``Prompt.grammar``, llguidance syntax) is sent as
  ``structured_outputs.grammar`` (vLLM >= 0.12, served with the guidance backend) and as
  ``ebnf`` (SGLang with ``--grammar-backend llguidance``). The answer is the dialect's own text.
- ``json_schema``: ``response_format`` json_schema from ``Prompt.json_form``, for dialects whose
  call is a JSON object (qwen25vl's ``<tool_call>`` body, qwen2vl's ``✿ARGS✿`` with its name).
  A JSON call that comes back is written in the dialect's text by copying name and arguments
  verbatim (no validation, no repair here); any other answer passes through unchanged.
  UI-TARS' python-like calls have no JSON form: grammar or nothing.
- ``none``: plain text, validated by the dialect's parser.
- ``auto``: the strongest one the prompt allows; when the server refuses a constrained request
  (HTTP 400/422, e.g. ``transformers serve`` rejects unknown fields) it steps down and, once a
  weaker mode is accepted, stays there for the rest of the run (``mode`` says which).

The prompt's ``sampling`` gives the defaults of ``temperature``, ``top_p`` and ``max_tokens``
(explicit options win), ``stop`` goes as ``stop``. vLLM's extra parameters (``top_k``,
``repetition_penalty``, and ``continue_final_message``/``add_generation_prompt`` for a prompt
whose last assistant message the model continues) are sent too; a server that refuses unknown
fields (``transformers serve``) gets the request again without them, and a continued assistant
turn is then merged into the user message before it, as Qwen-Agent does for OpenAI-compatible
servers (``simulate_response_completion_with_chat``).

Coordinates: the server's processor resizes again. An image its budget admits is only rounded
to multiples of 28, the same by every server, and an image already at such a size is left as
it is; so the client's budget (``pixels``) decides what the model sees as long as the server's
``max_pixels`` is at least as large (docs/serving.md).
Connection errors, timeouts, HTTP 429/5xx and garbage answers are retried ``retries`` times
with exponential backoff; then a one-line ModelError names the URL, what happened and what to do.

Many agents, one server: a model object may be shared by agents in several threads, and every
agent may have its own object (worker processes, Ray actors). What a request depends on is kept
per thread (the screenshots already encoded, the mode the last request used); what the client
learns about the server (its model name, a refused constraint, refused extra parameters) is
shared, since it holds for every agent. ``max_in_flight`` bounds the requests open to the server
from this machine at once, across threads and processes (``inflight.py``); waiting for a slot is
reported as ``timings["queue"]`` and does not count against ``timeout``.
"""

from __future__ import annotations

import base64
import io
import os
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

import httpx
from PIL import Image

from pixelpilot.agent.errors import ConfigError, ModelError
from pixelpilot.agent.geometry import FACTOR, HUB_PIXELS, PixelBudget
from pixelpilot.vlm.base import (
    MAX_NEW_TOKENS,
    Generation,
    JsonForm,
    Prompt,
    VisionModel,
    merge_final,
)
from pixelpilot.vlm.inflight import DEFAULT_MAX_IN_FLIGHT, limit_for

__all__ = ["Constrain", "OpenAIServerModel", "from_reference"]

Constrain = Literal["auto", "json_schema", "grammar", "none"]
ImageFormat = Literal["jpeg", "png"]
_Mode = Literal["grammar", "json_schema", "none"]
_LADDER: tuple[_Mode, ...] = ("grammar", "json_schema", "none")
_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_CONSTRAINT_REFUSED = frozenset({400, 415, 422})
"""Statuses with which servers refuse a request field they do not know or cannot compile."""
_MAX_RETRY_AFTER = 30.0


class _Failed(ModelError):
    """Every try answered an HTTP error status worth retrying (5xx and the like)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Refused(Exception):
    """The server refused the request itself (HTTP 4xx other than 429): not worth a retry."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail = status, detail


class OpenAIServerModel(VisionModel):
    """A Qwen2-VL-family model served by vLLM, SGLang or ``transformers serve``.

    ``base_url`` is the server's OpenAI base (``http://host:8000/v1``; a bare
    ``http://host:8000`` gets ``/v1``). ``model`` is the served model name; empty: the one model
    ``GET /v1/models`` lists (looked up on the first request). ``pixels`` must match what the server's processor
    allows (default: the hub checkpoints' budget). ``api_key`` defaults to ``$OPENAI_API_KEY``.
    ``max_in_flight``: the most requests this machine has open to the server at once (default
    ``$PIXELPILOT_MAX_IN_FLIGHT`` or 16), shared by every client to the same URL.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 60,
        retries: int = 3,
        backoff: float = 0.5,
        constrain: Constrain = "auto",
        pixels: PixelBudget | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        image_format: ImageFormat = "jpeg",
        prescale: bool = True,
        name: str | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        if constrain not in ("auto", *_LADDER):
            raise ConfigError(
                f"constrain must be auto, grammar, json_schema or none, not {constrain!r}"
            )
        if image_format not in ("jpeg", "png"):
            raise ConfigError(f"image_format must be jpeg or png, not {image_format!r}")
        if retries < 0 or timeout <= 0 or backoff < 0:
            raise ConfigError("retries and backoff must be >= 0 and timeout > 0")
        in_flight = _max_in_flight(max_in_flight)
        self.base_url = _normalize_url(base_url)
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.constrain: Constrain = constrain
        self.pixels = pixels or HUB_PIXELS
        self.max_tokens, self.temperature = max_tokens, temperature
        self.image_format: ImageFormat = image_format
        self.prescale = prescale
        self.name = name or f"openai:{self.base_url}#{model or '?'}"
        self.max_in_flight = in_flight
        self._limit = limit_for(self.base_url, in_flight)
        self._local = threading.local()
        """Per thread (one agent's episode): ``images``, the screenshots of its last prompt
        (id -> (image, data URL, size sent)); ``mode``, the mode its last request used."""
        self._floor = 0  # index into _LADDER below which auto no longer tries
        self._stop_here = False
        """Whether stop strings are applied here because the server fails requests with them."""
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), headers=headers
        )
        self._extras: bool | None = None
        """Whether the server takes vLLM's extra parameters (None: not known yet)."""

    @property
    def mode(self) -> _Mode | None:
        """The constraint mode this thread's last request used (auto remembers a step down)."""
        mode: _Mode | None = getattr(self._local, "mode", None)
        return mode

    # -- the request ---------------------------------------------------------------------------
    def _generate(self, prompt: Prompt) -> Generation:
        if not self.model:
            self.model = self._served_model()
        urls, resized, encode_s = self._encoded(prompt)
        form = prompt.json_form
        modes = self._modes(prompt, form is not None)
        t0 = time.perf_counter()
        self._local.queued = 0.0
        answer, mode, waited = self._ask(urls, prompt, form, modes)
        if self.constrain == "auto":
            self._floor = max(self._floor, _LADDER.index(mode))
        self._local.mode = mode
        queued: float = self._local.queued
        text = _content(answer)
        if text is None:
            raise ModelError(
                f"{self.url}: the answer has no message text ({_snippet(answer)}); "
                "is this an OpenAI-compatible chat completions endpoint?"
            )
        if self._stop_here and prompt.stop:
            text = _cut(text, prompt.stop)
        if mode == "json_schema" and form is not None:
            text = form.rewrite(text)
        usage = answer.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return Generation(
            text=text,
            prompt_tokens=_int(usage.get("prompt_tokens")),
            output_tokens=_int(usage.get("completion_tokens")),
            visual_tokens=None
            if resized is None
            else (resized[0] // FACTOR) * (resized[1] // FACTOR),
            resized=resized,
            timings={
                "encode": encode_s,
                "request": time.perf_counter() - t0 - waited - queued,
                "backoff": waited,
                "queue": queued,
            },
        )

    def _ask(
        self, urls: list[str], prompt: Prompt, form: JsonForm | None, modes: list[_Mode]
    ) -> tuple[dict[str, Any], _Mode, float]:
        """(answer, the mode it was asked in, seconds of backoff), stepping down on refusals:
        each mode with vLLM's extra parameters, then without them."""
        tries = [
            (mode, extras)
            for mode in modes
            for extras in ((True, False) if self._extras is None and _extras(prompt) else (False,))
        ]
        if self._extras and _extras(prompt):
            tries = [(mode, True) for mode in modes]
        for i, (mode, extras) in enumerate(tries):
            try:
                answer, slept = self._post_stop(self._body(urls, mode, prompt, form, extras))
            except _Refused as exc:
                if i < len(tries) - 1 and exc.status in _CONSTRAINT_REFUSED:
                    continue  # the server refused this constraint, or the extra parameters
                raise ModelError(self._refused_message(exc, mode)) from None
            if _extras(prompt):
                self._extras = extras
            return answer, mode, slept
        raise AssertionError("no request was tried")  # pragma: no cover - modes is never empty

    def _post_stop(self, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """``_post``, for a server that fails every request carrying ``stop`` strings
        (``transformers serve`` 5.x answers 500 for a vision-language checkpoint: its stop
        criteria ask the processor for a vocabulary). When a request with them fails with a
        server error on every try and the same request without them succeeds, the server never
        gets them again and the answer is cut at the first one here (``_cut``)."""
        if "stop" not in body:
            return self._post(body)
        bare = {k: v for k, v in body.items() if k != "stop"}
        if self._stop_here:
            return self._post(bare)
        try:
            return self._post(body)
        except _Failed as failed:
            try:
                answer, slept = self._post(bare)
            except (ModelError, _Refused):
                raise failed from None
            self._stop_here = True
            return answer, slept

    def _body(
        self,
        urls: list[str],
        mode: _Mode,
        prompt: Prompt,
        form: JsonForm | None,
        extras: bool,
    ) -> dict[str, Any]:
        s = prompt.sampling
        temperature = self.temperature
        top_p = None
        if temperature is None:  # the family's rule, as a whole
            temperature = s.temperature if s.temperature is not None else 0.0
            top_p = s.top_p
        body: dict[str, Any] = {
            "model": self.model,
            "messages": _messages(prompt, urls, prompt.continue_final and not extras),
            "max_tokens": self.max_tokens or s.max_new_tokens or MAX_NEW_TOKENS,
            "temperature": temperature,
        }
        if top_p is not None:
            body["top_p"] = top_p
        if s.frequency_penalty:
            body["frequency_penalty"] = s.frequency_penalty
        if prompt.stop:
            body["stop"] = list(prompt.stop)
        if extras:
            if self.temperature is None and s.top_k is not None:
                body["top_k"] = s.top_k
            if s.repetition_penalty not in (None, 1.0):
                body["repetition_penalty"] = s.repetition_penalty
            if prompt.continue_final:
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
        return {**body, **_constraint(mode, prompt, form)}

    def _modes(self, prompt: Prompt, has_json: bool) -> list[_Mode]:
        """Constraint modes to try in order for this prompt."""
        if self.constrain == "grammar" and prompt.grammar is None:
            raise ConfigError(
                f"{self.name}: constrain='grammar' but dialect {prompt.meta.get('dialect')!r} "
                "gave no grammar; use constrain='auto'"
            )
        if self.constrain == "json_schema" and not has_json:
            raise ConfigError(
                f"{self.name}: dialect {prompt.meta.get('dialect')!r} has no JSON call form; "
                "use constrain='grammar' or 'none'"
            )
        if self.constrain != "auto":
            return [self.constrain]
        usable = {"grammar": prompt.grammar is not None, "json_schema": has_json, "none": True}
        return [m for m in _LADDER[self._floor :] if usable[m]]

    def _post(self, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """POST with bounded retries; (the answer's JSON, seconds slept in backoff)."""
        problem, hint, slept, status = "", "", 0.0, 0
        for attempt in range(self.retries + 1):
            delay = self.backoff * 2**attempt
            try:
                with self._limit.slot() as queued:
                    self._local.queued += queued
                    resp = self._client.post(self.url, json=body)
            except httpx.TimeoutException as exc:
                status = 0
                problem = f"timed out after {self.timeout:g} s: {type(exc).__name__}"
                hint = "is the server overloaded? raise timeout= or lower the pixel budget"
            except httpx.TransportError as exc:
                status = 0
                problem = f"cannot connect: {type(exc).__name__}: {exc}"
                hint = "is the server running? see docs/serving.md, or fix the URL"
            else:
                if resp.status_code == 200:
                    answer = _json(resp)
                    if answer is not None:
                        return answer, slept
                    status = 0
                    problem = f"answered garbage, not a chat completion ({_snippet(resp.text)})"
                    hint = "is this an OpenAI-compatible /v1 endpoint? check the URL"
                elif resp.status_code in _RETRY_STATUS:
                    status = resp.status_code
                    problem = f"HTTP {resp.status_code} ({_detail(resp)})"
                    hint = "the server is failing or overloaded; see its log"
                    delay = max(delay, _retry_after(resp))
                else:
                    raise _Refused(resp.status_code, _detail(resp))
            if attempt < self.retries:
                time.sleep(delay)
                slept += delay
        tries = self.retries + 1
        message = f"{self.url}: {problem} ({tries} tr{'y' if tries == 1 else 'ies'}); {hint}"
        if status:
            raise _Failed(message, status)
        raise ModelError(message)

    def _served_model(self) -> str:
        """The one model the server lists; ModelError naming them when it is not one."""
        url = f"{self.base_url}/models"
        try:
            resp = self._client.get(url)
            data = resp.json().get("data") if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise ModelError(
                f"{url}: cannot list the served models ({type(exc).__name__}: {exc}); "
                "is the server running? or name the model: openai:URL#MODEL"
            ) from None
        ids = [m.get("id") for m in data or [] if isinstance(m, dict)]
        if len(ids) != 1 or not isinstance(ids[0], str):
            raise ModelError(
                f"{url}: the server lists {len(ids)} models ({', '.join(map(str, ids))[:200]}); "
                "name one: openai:URL#MODEL"
            )
        return ids[0]

    def _refused_message(self, exc: _Refused, mode: _Mode) -> str:
        if exc.status in (401, 403):
            hint = "set the API key (api_key= or $OPENAI_API_KEY)"
        elif exc.status == 404:
            hint = f"check the URL (it should end in /v1) and the model name ({self.base_url}/models lists them)"
        elif mode != "none":
            hint = f"the server refused constrain={mode!r}: serve with a guidance/llguidance backend or use constrain='auto'"
        else:
            hint = "the server refused the request"
        return f"{self.url}: {exc}; {hint}"

    # -- the screenshot ------------------------------------------------------------------------
    def _encoded(self, prompt: Prompt) -> tuple[list[str], tuple[int, int] | None, float]:
        """(data URL of each screenshot in prompt order, size the model sees the last one at,
        seconds spent encoding) (([], None, 0) for a text-only prompt).

        Each screenshot is encoded once: the retries of a step, and later steps that show
        earlier screenshots again, send the same image objects.
        """
        images = prompt.images
        if not images:
            return [], None, 0.0
        cache: dict[int, tuple[Image.Image, str, tuple[int, int]]] = getattr(
            self._local, "images", {}
        )
        seen: dict[int, tuple[Image.Image, str, tuple[int, int]]] = {}
        t0 = time.perf_counter()
        spent = False
        for image in images:
            hit = cache.get(id(image))
            if hit is None or hit[0] is not image:
                hit = (image, *self._encode(image))
                spent = True
            seen[id(image)] = hit
        self._local.images = seen  # only what this prompt shows stays cached
        seconds = time.perf_counter() - t0 if spent else 0.0
        return [seen[id(im)][1] for im in images], seen[id(images[-1])][2], seconds

    def _encode(self, image: Image.Image) -> tuple[str, tuple[int, int]]:
        """(data URL, size sent) of one screenshot, shrunk to the budget where it shrinks it."""
        resized = self.pixels.resize(*image.size)
        sent = image.convert("RGB") if image.mode != "RGB" else image
        if self.prescale and resized != _rounded(*image.size):
            sent = sent.resize(resized, Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        if self.image_format == "png":
            sent.save(buf, "PNG", compress_level=1)
        else:
            sent.save(buf, "JPEG", quality=95, subsampling=0)
        url = f"data:image/{self.image_format};base64,{base64.b64encode(buf.getvalue()).decode()}"
        return url, resized

    def close(self) -> None:
        self._client.close()
        self._local = threading.local()


def from_reference(ref: str, **options: Any) -> OpenAIServerModel:
    """The model a CLI reference names: ``URL#MODEL`` (what follows ``openai:``).

    ``openai:http://gpu-box:8000/v1#Qwen/Qwen2-VL-7B-Instruct``; without ``#MODEL`` the
    server's one listed model is used. ``options`` go to OpenAIServerModel.
    """
    url, _, model = ref.partition("#")
    if not url:
        raise ConfigError(
            f"bad server model reference {ref!r}; write openai:URL#MODEL, "
            "e.g. openai:http://localhost:8000/v1#Qwen/Qwen2-VL-7B-Instruct"
        )
    return OpenAIServerModel(url, model.strip(), **options)


def _max_in_flight(value: int | None) -> int:
    """The bound given, else ``$PIXELPILOT_MAX_IN_FLIGHT``, else the default; ConfigError
    when it is not a positive whole number."""
    raw: object = value if value is not None else os.environ.get("PIXELPILOT_MAX_IN_FLIGHT")
    if raw is None or raw == "":
        return DEFAULT_MAX_IN_FLIGHT
    try:
        n = int(str(raw))
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(
            f"max_in_flight (or $PIXELPILOT_MAX_IN_FLIGHT) must be a whole number >= 1, "
            f"not {raw!r}"
        )
    return n


# -- pure helpers ------------------------------------------------------------------------------
def _cut(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first of the ``stop`` strings, as a server cuts it (without it)."""
    ends = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[: min(ends)] if ends else text


def _normalize_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"bad server URL {base_url!r}; expected http://HOST:PORT/v1")
    return url + "/v1" if parsed.path in ("", "/") else url


def _rounded(width: int, height: int) -> tuple[int, int]:
    """Each side rounded to a multiple of 28: what every server makes of an image its budget
    admits. Only when the budget shrinks the image further must the client resize it itself."""
    return max(FACTOR, round(width / FACTOR) * FACTOR), max(FACTOR, round(height / FACTOR) * FACTOR)


def _extras(prompt: Prompt) -> bool:
    """Whether the prompt asks for any of vLLM's extra parameters."""
    s = prompt.sampling
    return prompt.continue_final or s.top_k is not None or s.repetition_penalty not in (None, 1.0)


def _messages(prompt: Prompt, urls: list[str], merge_final_: bool = False) -> list[dict[str, Any]]:
    """The prompt as OpenAI chat messages (text-only ones as plain strings), the i-th image as
    ``urls[i]``. ``merge_final``: a final assistant message is appended to the user message
    before it after a ``\n\n`` part, for servers that cannot continue an assistant turn
    (Qwen-Agent's ``simulate_response_completion_with_chat``)."""
    messages = merge_final(prompt.messages) if merge_final_ else prompt.messages
    out: list[dict[str, Any]] = []
    shots = iter(urls)
    for m in messages:
        if all(p["type"] == "text" for p in m.content):
            out.append({"role": m.role, "content": m.text})
            continue
        parts: list[dict[str, Any]] = []
        for p in m.content:
            if p["type"] == "text":
                parts.append({"type": "text", "text": p["text"]})
            else:
                parts.append({"type": "image_url", "image_url": {"url": next(shots)}})
        out.append({"role": m.role, "content": parts})
    return out


def _constraint(mode: _Mode, prompt: Prompt, form: JsonForm | None) -> dict[str, Any]:
    if mode == "grammar":
        # vLLM >= 0.12 reads structured_outputs and ignores ebnf; SGLang the other way round.
        return {"structured_outputs": {"grammar": prompt.grammar}, "ebnf": prompt.grammar}
    if mode == "json_schema" and form is not None:
        schema = {"name": "call", "schema": form.schema, "strict": True}
        return {"response_format": {"type": "json_schema", "json_schema": schema}}
    return {}


def _json(resp: httpx.Response) -> dict[str, Any] | None:
    """The response's JSON if it is a chat completion with at least one choice, else None."""
    try:
        data = resp.json()
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    return data


def _content(answer: dict[str, Any]) -> str | None:
    message = answer["choices"][0].get("message")
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if content is None and not message.get("tool_calls"):
        return ""  # an empty answer is the model's fault: the dialect says so and re-asks
    return content if isinstance(content, str) else None


def _detail(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return _snippet(resp.text)
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message", data)))
        if isinstance(err, dict):
            err = err.get("message", err)
        return _snippet(str(err))
    return _snippet(str(data))


def _retry_after(resp: httpx.Response) -> float:
    try:
        return min(float(resp.headers.get("retry-after", 0)), _MAX_RETRY_AFTER)
    except ValueError:
        return 0.0


def _snippet(value: Any, limit: int = 120) -> str:
    text = " ".join(str(value).split())
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
