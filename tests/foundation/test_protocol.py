"""The protocol module: every message round-trips, bad lines are refused with a reason."""

from __future__ import annotations

import json

import pytest

from engine import protocol as p


@pytest.mark.parametrize("cls", list(p.REQUEST_TYPES.values()))
def test_every_request_round_trips(cls):
    message = cls(id=7)
    decoded = p.decode_request(message.encode())
    assert decoded == message
    assert type(decoded) is cls


@pytest.mark.parametrize("cls", list(p.EVENT_TYPES.values()))
def test_every_event_round_trips(cls):
    event = p.make_event(cls.TYPE, 42)
    decoded = p.decode_message(event.encode())
    assert decoded == event
    assert decoded.seq == 42


def test_reply_and_error_round_trip():
    reply = p.Reply(id=3, result={"job_id": "job-1"})
    error = p.Error(id=4, error="No job is running.", hint="See swapwizard status.")
    assert p.decode_message(reply.encode()) == reply
    assert p.decode_message(error.encode()) == error


def test_lines_are_one_json_object_each():
    line = p.Submit(id=1, kind="extract", params={"side": "both", "path": "a\nb"}).encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line)["params"]["path"] == "a\nb"


@pytest.mark.parametrize("line, fragment", [
    (b"not json\n", "not valid JSON"),
    (b"[1, 2]\n", "JSON object"),
    (b'{"kind": "x"}\n', "JSON object"),
    (b'{"type": "launch_missiles"}\n', "Unknown request"),
    (b'{"type": "submit", "kind": 5}\n', "submit.kind = 5 is not text."),
    (b'{"type": "subscribe", "from_seq": "zero"}\n', "subscribe.from_seq = 'zero' is not a whole number."),
    (b'{"type": "hello", "version": true}\n', "hello.version = True is not a whole number."),
    (b'{"type": "submit", "kind": null}\n', "submit.kind = null is not text."),
    (b'{"type": "cancel", "job_id": 3}\n', "cancel.job_id = 3 is not text."),
    (b"\xff\xfe\n", "UTF-8"),
])
def test_bad_lines_are_refused_with_a_reason(line, fragment):
    with pytest.raises(p.ProtocolError) as info:
        p.decode_request(line)
    assert fragment in info.value.message


def test_oversized_line_is_refused():
    with pytest.raises(p.ProtocolError, match="longer"):
        p.decode_request(b"{" + b" " * p.MAX_LINE_BYTES + b"}\n")
