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
- ``json_schema``: ``response_format`` json_schema for dialects whose call is a JSON object:
  qwen25vl (the ``<tool_call>`` body ``{"name", "arguments"}``) and qwen2vl (``{"name",
  "arguments"}`` for ``✿FUNCTION✿``/``✿ARGS✿``). A JSON call that comes back is written in the
  dialect's text by copying name and arguments verbatim (no validation, no repair here); any
  other answer passes through unchanged. UI-TARS' python-like calls have no JSON form: grammar
  or nothing.
- ``none``: plain text, validated by the dialect's parser.
- ``auto``: the strongest one the prompt allows; when the server refuses a constrained request
  (HTTP 400/422, e.g. ``transformers serve`` rejects unknown fields) it steps down and, once a
  weaker mode is accepted, stays there for the rest of the run (``mode`` says which).

Coordinates: the server's processor resizes again. An image its budget admits is only rounded
to multiples of 28, the same by every server, and an image already at such a size is left as
it is; so the client's budget (``pixels``) decides what the model sees as long as the server's
``max_pixels`` is at least as large (docs/serving.md).
Connection errors, timeouts, HTTP 429/5xx and garbage answers are retried ``retries`` times
with exponential backoff; then a one-line ModelError names the URL, what happened and what to do.
"""

from __future__ import annotations

import base64
import io
import os
import time
from typing import Any, Literal

import httpx
from PIL import Image

from pixelpilot.agent.errors import ConfigError, ModelError
from pixelpilot.agent.geometry import FACTOR, HUB_PIXELS, PixelBudget
from pixelpilot.vlm.base import Generation, Prompt, VisionModel
from pixelpilot.vlm.grammar import MAX_NEW_TOKENS
from pixelpilot.vlm.json_forms import JsonForm, from_json, json_form

__all__ = ["Constrain", "OpenAIServerModel", "from_reference"]

Constrain = Literal["auto", "json_schema", "grammar", "none"]
ImageFormat = Literal["jpeg", "png"]
_Mode = Literal["grammar", "json_schema", "none"]
_LADDER: tuple[_Mode, ...] = ("grammar", "json_schema", "none")
_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_CONSTRAINT_REFUSED = frozenset({400, 415, 422})
"""Statuses with which servers refuse a request field they do not know or cannot compile."""
_MAX_RETRY_AFTER = 30.0


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
        max_tokens: int = MAX_NEW_TOKENS,
        temperature: float = 0.0,
        image_format: ImageFormat = "jpeg",
        prescale: bool = True,
        name: str | None = None,
    ) -> None:
        if constrain not in ("auto", *_LADDER):
            raise ConfigError(
                f"constrain must be auto, grammar, json_schema or none, not {constrain!r}"
            )
        if image_format not in ("jpeg", "png"):
            raise ConfigError(f"image_format must be jpeg or png, not {image_format!r}")
        if retries < 0 or timeout <= 0 or backoff < 0:
            raise ConfigError("retries and backoff must be >= 0 and timeout > 0")
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
        self.mode: _Mode | None = None
        """The constraint mode the last request used (auto remembers a step down)."""
        self._floor = 0  # index into _LADDER below which auto no longer tries
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), headers=headers
        )
        self._image: tuple[Image.Image, str, tuple[int, int], float] | None = None

    # -- the request ---------------------------------------------------------------------------
    def _generate(self, prompt: Prompt) -> Generation:
        if not self.model:
            self.model = self._served_model()
        url, resized, encode_s = self._encoded(prompt)
        messages = _messages(prompt, url)
        form = json_form(prompt)
        modes = self._modes(prompt, form is not None)
        t0 = time.perf_counter()
        answer, mode, waited = self._ask(messages, prompt, form, modes)
        if self.constrain == "auto":
            self._floor = _LADDER.index(mode)
        self.mode = mode
        text = _content(answer)
        if text is None:
            raise ModelError(
                f"{self.url}: the answer has no message text ({_snippet(answer)}); "
                "is this an OpenAI-compatible chat completions endpoint?"
            )
        if mode == "json_schema" and form is not None:
            text = from_json(text, form[1])
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
                "request": time.perf_counter() - t0 - waited,
                "backoff": waited,
            },
        )

    def _ask(
        self,
        messages: list[dict[str, Any]],
        prompt: Prompt,
        form: JsonForm | None,
        modes: list[_Mode],
    ) -> tuple[dict[str, Any], _Mode, float]:
        """(answer, the mode it was asked in, seconds of backoff), stepping down on refusals."""
        for mode in modes[:-1]:
            try:
                answer, slept = self._post(self._body(messages, mode, prompt, form))
            except _Refused as exc:
                if exc.status in _CONSTRAINT_REFUSED:
                    continue  # auto only: the server refused this kind of constraint
                raise ModelError(self._refused_message(exc, mode)) from None
            return answer, mode, slept
        mode = modes[-1]
        try:
            answer, slept = self._post(self._body(messages, mode, prompt, form))
        except _Refused as exc:
            raise ModelError(self._refused_message(exc, mode)) from None
        return answer, mode, slept

    def _body(
        self, messages: list[dict[str, Any]], mode: _Mode, prompt: Prompt, form: JsonForm | None
    ) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            **_constraint(mode, prompt, form),
        }

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
        problem, hint, slept = "", "", 0.0
        for attempt in range(self.retries + 1):
            delay = self.backoff * 2**attempt
            try:
                resp = self._client.post(self.url, json=body)
            except httpx.TimeoutException as exc:
                problem = f"timed out after {self.timeout:g} s: {type(exc).__name__}"
                hint = "is the server overloaded? raise timeout= or lower the pixel budget"
            except httpx.TransportError as exc:
                problem = f"cannot connect: {type(exc).__name__}: {exc}"
                hint = "is the server running? see docs/serving.md, or fix the URL"
            else:
                if resp.status_code == 200:
                    answer = _json(resp)
                    if answer is not None:
                        return answer, slept
                    problem = f"answered garbage, not a chat completion ({_snippet(resp.text)})"
                    hint = "is this an OpenAI-compatible /v1 endpoint? check the URL"
                elif resp.status_code in _RETRY_STATUS:
                    problem = f"HTTP {resp.status_code} ({_detail(resp)})"
                    hint = "the server is failing or overloaded; see its log"
                    delay = max(delay, _retry_after(resp))
                else:
                    raise _Refused(resp.status_code, _detail(resp))
            if attempt < self.retries:
                time.sleep(delay)
                slept += delay
        tries = self.retries + 1
        raise ModelError(
            f"{self.url}: {problem} ({tries} tr{'y' if tries == 1 else 'ies'}); {hint}"
        )

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
    def _encoded(self, prompt: Prompt) -> tuple[str, tuple[int, int] | None, float]:
        """(data URL, size the model sees, seconds it took) of the prompt's screenshot
        (("", None, 0) for a text-only prompt).

        Encoded once per screenshot: the retries of a step send the same image object.
        """
        images = prompt.images
        if len(images) > 1:
            raise ModelError(
                f"{self.name}: a prompt carries one screenshot at most, got {len(images)}"
            )
        if not images:
            return "", None, 0.0
        image = images[0]
        cached = self._image
        if cached is not None and cached[0] is image:
            return cached[1], cached[2], 0.0
        t0 = time.perf_counter()
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
        seconds = time.perf_counter() - t0
        self._image = (image, url, resized, seconds)
        return url, resized, seconds

    def close(self) -> None:
        self._client.close()
        self._image = None


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


# -- pure helpers ------------------------------------------------------------------------------
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


def _messages(prompt: Prompt, image_url: str) -> list[dict[str, Any]]:
    """The prompt as OpenAI chat messages; text-only messages as plain strings."""
    out: list[dict[str, Any]] = []
    for m in prompt.messages:
        if all(p["type"] == "text" for p in m.content):
            out.append({"role": m.role, "content": m.text})
            continue
        parts: list[dict[str, Any]] = []
        for p in m.content:
            if p["type"] == "text":
                parts.append({"type": "text", "text": p["text"]})
            else:
                parts.append({"type": "image_url", "image_url": {"url": image_url}})
        out.append({"role": m.role, "content": parts})
    return out


def _constraint(mode: _Mode, prompt: Prompt, form: JsonForm | None) -> dict[str, Any]:
    if mode == "grammar":
        # vLLM >= 0.12 reads structured_outputs and ignores ebnf; SGLang the other way round.
        return {"structured_outputs": {"grammar": prompt.grammar}, "ebnf": prompt.grammar}
    if mode == "json_schema" and form is not None:
        schema = {"name": "call", "schema": form[0], "strict": True}
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
