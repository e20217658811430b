"""The HTTP bad-input catalogue: request bodies built here, with the status each must get.

Each case: (id, body, expected status, a fragment the answer must contain). ``body`` is
raw bytes (sent as application/json) or a Python value (sent with ``json=``). The server
under test has ``max_text_chars: 5000`` and ``max_batch_items: 8``.
"""

from __future__ import annotations

from typing import Any

DEEP = 100_000


def raw(text: str) -> bytes:
    return text.encode("utf-8")


# Entries whose answer is an error: the fragment names the field or the limit.
ERRORS: list[tuple[str, Any, int, str]] = [
    ("not-json", raw("{not json"), 422, "json"),
    ("empty-body", b"", 422, "body"),
    ("truncated", raw('{"text": "abc'), 422, "json"),
    ("array-body", raw("[]"), 422, "body"),
    ("string-body", raw('"My name is Wolfgang"'), 422, "body"),
    ("null-body", raw("null"), 422, "body"),
    ("number-body", raw("42"), 422, "body"),
    ("text-int", {"text": 5}, 422, "text"),
    ("text-nan", raw('{"text": NaN}'), 422, "text"),
    ("text-infinity", raw('{"text": Infinity}'), 422, "text"),
    ("text-minus-infinity", raw('{"text": -Infinity}'), 422, "text"),
    ("text-huge-float", raw('{"text": 1e999}'), 422, "text"),
    ("text-bool", {"text": True}, 422, "text"),
    ("text-list", {"text": ["a"]}, 422, "text"),
    ("text-object", {"text": {"a": 1}}, 422, "text"),
    ("text-null", {"text": None}, 422, "exactly one"),
    ("texts-string", {"texts": "one string"}, 422, "texts"),
    ("texts-ints", {"texts": [1, 2]}, 422, "texts"),
    ("texts-null-item", {"texts": [None]}, 422, "texts"),
    ("texts-nan-item", raw('{"texts": ["ok", NaN]}'), 422, "texts"),
    ("tokens-mixed", {"tokens": [["ok"], "bad"]}, 422, "tokens"),
    ("tokens-flat", {"tokens": ["ab"]}, 422, "tokens"),
    ("tokens-int", {"tokens": [[1]]}, 422, "tokens"),
    ("tokens-nan", raw('{"tokens": [["a", NaN]]}'), 422, "tokens"),
    ("text-and-texts", {"text": "a", "texts": ["b"]}, 422, "exactly one"),
    ("text-and-tokens", {"text": "a", "tokens": [["b"]]}, 422, "exactly one"),
    ("no-input", {}, 422, "exactly one"),
    ("only-return-tokens", {"return_tokens": True}, 422, "exactly one"),
    ("extra-key", {"text": "x", "extra": 1}, 422, "extra"),
    ("return-tokens-not-bool", {"text": "x", "return_tokens": "maybe"}, 422, "return_tokens"),
    ("surrogate-text", raw('{"text": "\\ud800"}'), 422, "escape"),
    ("surrogate-inside", raw('{"text": "a\\udfffb", "return_tokens": true}'), 422, "surrogate"),
    ("surrogate-texts", raw('{"texts": ["ok", "\\udfff"]}'), 422, "surrogate"),
    ("surrogate-tokens", raw('{"tokens": [["ok", "\\ud800"]]}'), 422, "escape"),
    ("deep-array", raw("[" * DEEP + "]" * DEEP), 422, "json"),
    ("deep-object", raw('{"text": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}"), 422, "json"),
    ("text-too-long", {"text": "x" * 5001}, 413, "5000"),
    ("too-many-texts", {"texts": ["a"] * 9}, 413, "at most 8"),
    ("tokens-too-long", {"tokens": [["abcd"] * 1001]}, 413, "5000"),
    ("one-of-texts-too-long", {"texts": ["ok", "y" * 6000]}, 413, "input 1"),
]

# Entries that must succeed: (id, body, number of results).
ACCEPTED: list[tuple[str, Any, int]] = [
    ("empty-text", {"text": ""}, 1),
    ("whitespace-text", {"text": "  \n\t  "}, 1),
    ("no-texts", {"texts": []}, 0),
    ("empty-token-list", {"tokens": [[]]}, 1),
    ("emoji-and-zwj", {"text": "Wolfgang 😀 met 👩‍👩‍👧 in Berkeley", "return_tokens": True}, 1),
    ("null-like-words", {"tokens": [["None", "NaN", "null", "nan"]], "return_tokens": True}, 1),
    ("control-characters", {"text": "Wolfgang\u0000 lives\u0007 in\u200b Berkeley"}, 1),
    ("right-to-left", {"text": "שלום Wolfgang مرحبا Berkeley"}, 1),
    ("combining-marks", {"text": "Zoë Cafe\u0301 in Mu\u0308nchen"}, 1),
    ("duplicate-keys-last-wins", raw('{"text": "a", "text": "Berkeley"}'), 1),
    ("exact-limit", {"text": "x" * 5000}, 1),
    ("max-items", {"texts": ["Berkeley"] * 8}, 8),
]

# Requests wrong in method, path, content type or credentials: (id, method, path, headers, body, status).
# ``headers`` None means the valid key; the body is the JSON text to send.
_BODY = '{"text": "My name is Wolfgang"}'
PROTOCOL: list[tuple[str, str, str, dict[str, str] | None, str, int]] = [
    ("get-on-tag", "GET", "/v1/models/bilstm/tag", None, "", 405),
    ("plain-text-content", "POST", "/v1/models/bilstm/tag",
     {"Content-Type": "text/plain", "Authorization": "Bearer {key}"}, _BODY, 415),
    ("form-content", "POST", "/v1/models/bilstm/tag",
     {"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Bearer {key}"}, "text=Wolfgang", 415),
    ("unknown-model", "POST", "/v1/models/nope/tag", None, _BODY, 404),
    ("dot-dot-model", "POST", "/v1/models/%2e%2e/tag", None, _BODY, 404),
    ("no-key", "POST", "/v1/models/bilstm/tag", {}, _BODY, 401),
    ("no-key-bad-body", "POST", "/v1/models/bilstm/tag", {"Content-Type": "application/json"}, "{oops", 401),
    ("key-in-query", "POST", "/v1/models/bilstm/tag?api_key={key}", {}, _BODY, 401),
    ("key-in-other-header", "POST", "/v1/models/bilstm/tag", {"X-API-Key": "{key}"}, _BODY, 401),
    ("basic-scheme", "POST", "/v1/models/bilstm/tag", {"Authorization": "Basic {key}"}, _BODY, 401),
]
