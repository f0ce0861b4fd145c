"""Python literals read without evaluation: the same values Python reads, bounded work, and a
LiteralError (never another exception) for anything else."""

from __future__ import annotations

import ast
import random
import warnings

import pytest

from pixelpilot.agent.dialects.pyliteral import MAX_STRING, LiteralError, read_literal

SAME_AS_PYTHON = [
    "{'action': 'CLICK', 'value': None, 'position': [0.49, 0.42]}",
    "{'action': 'INPUT', 'value': \"what's new?\", 'position': [0.5, 0.1]}",
    "{'action': 'INPUT', 'value': 'say \"hi\" & it\\'s 東京', 'position': None}",
    "{'action': 'SWIPE', 'value': None, 'position': [[0.5, 0.8], [0.5, 0.2]]}",
    "{'a': (1, 2,), 'b': [], 'c': {}, 'd': -1.5e3, 'e': True, 'f': False, 1: .5, 'g': +3}",
    "'\\x41\\u00e9\\U0001F600 \\N{BULLET} \\101 \\t\\r\\n\\a\\b\\f\\v\\0 \\\\ \\' \\\"'",
    "'unknown escapes stay: \\d \\東 \\é \\\\d \\\\\\d'",
    "'a line \\\ncontinued'",
    "  [ 1 , 2 ,\n 3 ]",
]


@pytest.mark.parametrize("text", SAME_AS_PYTHON)
def test_reads_what_python_reads(text: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        want = ast.literal_eval(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the reader itself warns about nothing
        value, end = read_literal(text)
    assert value == want
    assert end == len(text)


def test_stops_after_the_first_literal() -> None:
    text = "{'action': 'ENTER', 'value': None, 'position': None},{'action': 'WAIT'} and more"
    value, end = read_literal(text)
    assert value == {"action": "ENTER", "value": None, "position": None}
    assert text[end:].startswith(",{")
    assert read_literal(text, end + 1)[0] == {"action": "WAIT"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{'a': ", "ends where a value should be"),
        ("{'a' 1}", "expected ':'"),
        ("{'a': __import__('os')}", "'__import__' is not a literal value"),
        ("{'a': 1 'b': 2}", "expected ',' or '}'"),
        ("[[[[[1]]]]]", "nested deeper than 4"),
        ("'abc", "not closed"),
        ("'a\nb'", "line break inside a quoted string"),
        ("{'a': 1", "ends before the closing '}'"),
        ("1e999", "too large"),
        ("9" * 5000, "too many digits"),
        ("{[1]: 2}", "key must be a string"),
        ("'\\x4'", "broken escape"),
        ("'\\ud800'", "surrogate"),
        ("[" + "1," * 300 + "]", "more than 256 values"),
        ("'" + "a" * (MAX_STRING + 1) + "'", "longer than"),
    ],
)
def test_refuses_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(LiteralError) as err:
        read_literal(text)
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_random_text_reads_as_python_or_raises_literal_error() -> None:
    rng = random.Random(5)
    alphabet = "{}[](),:'\"\\ \n0123456789.eE+-NoneTrufalsx東"
    read = 0
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        try:
            value, end = read_literal(text)
        except LiteralError:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                want = ast.literal_eval(text[:end].strip())
            except (SyntaxError, ValueError):  # we also read 037 (leading zeros) as 37
                continue
        assert value == want, text
        read += 1
    assert read > 100
