"""One check of a value against its declaration (engine.values), and one sentence format for the three
places that check values: a setting, a job's parameter and a protocol message's field."""

from __future__ import annotations

import math
from typing import Any, Literal

import pytest

from engine import protocol as p
from engine import settings
from engine.errors import UserError
from engine.jobs import get_kind
from engine.values import check_value


def refusal(call) -> tuple[str, str]:
    with pytest.raises((UserError, p.ProtocolError)) as caught:
        call()
    return caught.value.message, caught.value.hint


@pytest.mark.parametrize(("value", "annotation", "expected"), [
    (3, float, 3.0), (None, int | None, None), (["a", "b"], list[str], ["a", "b"]), ([1, 2], tuple[int, ...], (1, 2)),
    ("src", Literal["src", "dst"], "src"), ({"a": 1}, dict[str, Any], {"a": 1}), ("x", Any, "x"), (7, int | str, 7),
])
def test_a_value_that_suits_its_declaration_comes_back(value, annotation, expected):
    result = check_value("x", value, annotation)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(("value", "annotation", "limits", "message", "hint"), [
    (True, int, {}, "v = True is not a whole number.", "Give a whole number."),
    ("3", float, {}, "v = '3' is not a number.", "Give a number."),
    (None, str, {}, "v = null is not text.", "Give text."),
    (math.nan, float, {}, "v = nan is not a number.", "Give a number."),
    (["a", 2], list[str], {}, "v = ['a', 2] is not text.", "Give text."),
    (1, Literal["src", "dst"], {}, "v = 1 is not one of the choices.", "Use one of: src, dst."),
    (1.5, int | str, {}, "v = 1.5 is not a whole number or text.", "Give a whole number or text."),
    ("fog", str, {"choices": ("hull", "segment")}, "v = 'fog' is not one of the choices.", "Use one of: hull, segment."),
    (11, int, {"range": (0, 10)}, "v = 11 is out of range.", "Use 0 to 10."),
    ("a b", str, {"pattern": r"\w+", "pattern_words": "name"}, "v = 'a b' is not a valid name.", ""),
])
def test_a_value_that_does_not_suit_it_gets_one_sentence_and_a_hint(value, annotation, limits, message, hint):
    assert refusal(lambda: check_value("v", value, annotation, **limits)) == (message, hint)


def test_settings_job_parameters_and_protocol_fields_say_it_the_same_way():
    setting = settings.get("train", "iters")
    assert refusal(lambda: setting.check("lots", "--iters")) == (
        "[train] iters = 'lots' (--iters) is not a whole number.", f"For example: iters = {setting.default}.")
    # A job parameter that is a setting is checked by the setting's declaration...
    assert refusal(lambda: get_kind("train").parse_params({"iters": "lots"}))[0] == \
        "[train] iters = 'lots' (the request) is not a whole number."
    assert refusal(lambda: get_kind("train").parse_params({"iters": -5}))[0] == \
        "[train] iters = -5 (the request) is out of range."
    # ...one that is the job's own by its type, in the same words.
    assert refusal(lambda: get_kind("diagnostic_count").parse_params({"count": "many"}))[0] == \
        "Parameter 'count' = 'many' (the request) is not a whole number."
    assert refusal(lambda: get_kind("sort").parse_params({"side": "left"})) == (
        "Parameter 'side' = 'left' (the request) is not one of the choices.", "Use one of: src, dst.")
    assert refusal(lambda: p.decode_request(b'{"type": "submit", "kind": 5}')) == (
        "submit.kind = 5 is not text.", "Give text.")
