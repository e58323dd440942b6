"""Over 1,000 malformed and hostile requests to a real MLServer with our runtime and guard.

The corpus is generated here, deterministically: bad values for every datatype, bad values in
every column, nesting up to 5,000 deep in every place JSON allows it, shapes, content types,
parameters, request ids (non-Latin-1, CR/LF, 100 kB), broken structure, truncations, seeded
byte mutations of a good request, wrong methods, paths, content types and encodings, bodies
over the size limit. Every request goes through one pooled httpx client, followed by a valid
request on the same client. Nothing may answer 5xx, every refusal is JSON with a reason, the
client's one connection is never closed under it, the server stays ready, and its log holds
no traceback. What httpx cannot send (CR/LF in headers, requests sent by halves, a thousand
stalled connections) goes over raw sockets.
"""

from __future__ import annotations

import copy
import gzip
import json
import random
import re
import selectors
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from mlops_kit.deployment import DeploymentSpec
from mlops_kit.serving.guard import MAX_JSON_DEPTH
from mlops_kit.settings import EnvironmentSettings, ServingSettings, Settings
from mlops_kit.targets.local import LocalTarget
from mlops_kit.verify.v2 import encode_dataframe
from tests.serving.rawhttp import HOST, Connection, exchange, request

if TYPE_CHECKING:
    from tests.support.serving import Models

pytest_plugins = ["tests.support.serving"]
pytestmark = pytest.mark.slow

MODEL = "wine"
INFER = f"/v2/models/{MODEL}/infer"
LIMITS = {"max_request_bytes": 256 * 1024, "max_header_bytes": 8 * 1024, "read_timeout": 1.5}
DATATYPES = ("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64")
DATATYPES += ("FP16", "FP32", "FP64", "BYTES")
JSON = (("content-type", "application/json"),)


@dataclass(frozen=True)
class Case:
    """One request of the corpus, and what is known of its answer."""

    name: str
    body: bytes = b""
    method: str = "POST"
    path: str = INFER
    headers: tuple[tuple[str, str], ...] = JSON
    status: int | None = None
    """The exact status expected; None: any status below 500."""
    reason: str | None = None
    """A fragment the error message must contain."""


@dataclass
class Corpus:
    """The generated cases, built from a good request."""

    good: dict[str, Any]
    cases: list[Case] = field(default_factory=list)

    def add(self, name: str, body: Any, **kwargs: Any) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.cases.append(Case(name, raw, **kwargs))

    def body(self) -> dict[str, Any]:
        return copy.deepcopy(self.good)

    def spliced(self, name: str, body: dict[str, Any], raw: str, **kwargs: Any) -> None:
        """``body`` with the string ``"@"`` in it replaced by the JSON text ``raw``."""
        text = json.dumps(body)
        assert text.count('"@"') == 1
        self.add(name, text.replace('"@"', raw).encode(), **kwargs)


def nest(depth: int, inner: str = "1.0") -> str:
    return "[" * depth + inner + "]" * depth


def objects(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def build_corpus(good: dict[str, Any]) -> list[Case]:
    corpus = Corpus(good)
    _values(corpus)
    _columns(corpus)
    _nesting(corpus)
    _shapes(corpus)
    _content_types(corpus)
    _parameters(corpus)
    _ids(corpus)
    _structure(corpus)
    _truncations(corpus)
    _mutations(corpus)
    _http(corpus)
    return corpus.cases


# -- the families ----------------------------------------------------------------------------

BAD_VALUES: list[Any] = [2**7, -(2**7) - 1, 2**8, -1, 2**15, 2**16, 2**31, 2**32, 2**63]
BAD_VALUES += [-(2**63) - 1, 2**64, 2**70, 1.5, 1e39, 1e308, True, False, None, "1.0", "NaN"]
BAD_VALUES += ["", {}, [], "x" * 1000]


def _values(corpus: Corpus) -> None:
    """Every datatype with values out of its range or of another kind, in the first input."""
    for datatype in DATATYPES:
        for value in BAD_VALUES:
            body = corpus.body()
            body["inputs"][0].update(datatype=datatype, data=[value])
            corpus.add(f"value {datatype} {str(value)[:20]}", body)
    # The cases that gave 500s before, with the answer they must get now.
    for datatype, value in (("INT8", 300), ("UINT8", -1), ("INT64", 2**63), ("UINT16", 70000)):
        body = corpus.body()
        body["inputs"][0].update(datatype=datatype, data=[value])
        reason = f"value {value} at index 0, out of range for {datatype}"
        corpus.add(f"overflow {datatype}", body, status=422, reason=reason)
    for value in (None, "1.0", True, "NaN"):
        body = corpus.body()
        body["inputs"][0]["data"] = [value]
        corpus.add(f"FP64 {value!r}", body, status=422, reason="which is not a number")


def _columns(corpus: Corpus) -> None:
    """A bad FP64 value in each column in turn."""
    for index in range(len(corpus.good["inputs"])):
        for value in (None, "1.0", True, False, "inf", {}, [[]]):
            body = corpus.body()
            body["inputs"][index]["data"] = [value]
            corpus.add(f"column {index} {value!r}", body, status=422)
        body = corpus.body()
        body["inputs"][index]["data"] = "@"
        corpus.spliced(f"column {index} 1e400", body, "[1e400]", status=422)
        corpus.spliced(f"column {index} NaN literal", body, "[NaN]", status=422)


def _nesting(corpus: Corpus) -> None:
    """Arrays and objects nested deep in every place of the request."""
    for depth in (2, 3, 33, 63, 65, 100, 600, 999, 1000, 1001, 1100, 5000):
        deep = depth > MAX_JSON_DEPTH  # with the levels around it, 63 is a body of 64 or 65
        status = 400 if deep else None
        reason = "levels deep; at most 64" if deep else None
        kw: dict[str, Any] = {"status": status, "reason": reason}
        first: dict[str, Any] = corpus.body()
        for key in ("data", "shape", "name", "datatype"):
            body = corpus.body()
            body["inputs"][0][key] = "@"
            corpus.spliced(f"nested {key} {depth}", body, nest(depth), **kw)
        first["inputs"][0]["data"] = "@"
        corpus.spliced(f"nested objects in data {depth}", first, f"[{objects(depth)}]", **kw)
        corpus.spliced(f"nested id {depth}", {**corpus.body(), "id": "@"}, nest(depth), **kw)
        body = corpus.body()
        body["parameters"]["deep"] = "@"
        corpus.spliced(f"nested parameter {depth}", body, objects(depth), **kw)
        body = corpus.body()
        body["inputs"][0]["parameters"] = "@"
        corpus.spliced(f"nested input parameters {depth}", body, objects(depth), **kw)
        corpus.add(f"nested top level {depth}", nest(depth).encode(), status=status)
        corpus.spliced(f"nested inputs {depth}", {"inputs": "@"}, nest(depth), **kw)


def _shapes(corpus: Corpus) -> None:
    shapes: list[Any] = [[], [0], [-1], [-1, 1], [2**63], [2**64], [1] * 33, [1] * 64, [0, 1]]
    shapes += [[2, 1], [1, 2], [1, 1, 1], ["1"], [1.5], [None], "1", {}, [True]]
    for index in (0, 6, 12):
        for shape in shapes:
            body = corpus.body()
            body["inputs"][index]["shape"] = shape
            corpus.add(f"shape {index} {str(shape)[:20]} ({len(str(shape))})", body)


CONTENT_TYPES: list[Any] = ["pd", "np", "dict", "str", "datetime", "base64", "nope", "", "PD"]
CONTENT_TYPES += ["x" * 1000, "é", 5, [], {}, None]


def _content_types(corpus: Corpus) -> None:
    for content_type in CONTENT_TYPES:
        body = corpus.body()
        body["parameters"]["content_type"] = content_type
        corpus.add(f"request content type {str(content_type)[:20]}", body)
        for datatype, data in (("FP64", [1.0]), ("BYTES", ["2026-01-01T00:00:00"])):
            body = corpus.body()
            body["inputs"][0].update(datatype=datatype, data=data)
            body["inputs"][0]["parameters"] = {"content_type": content_type}
            corpus.add(f"input content type {datatype} {str(content_type)[:20]}", body)
    body = corpus.body()
    body["inputs"][0]["parameters"] = {"content_type": "datetime"}
    reason = "has content type 'datetime', which needs datatype BYTES, not FP64"
    corpus.add("datetime content type on FP64", body, status=422, reason=reason)


def _parameters(corpus: Corpus) -> None:
    variants: list[Any] = [{"foo": 1}, {"headers": "x"}, {"headers": {"a": "b"}}, {"": 1}]
    variants += [{"é": 1}, {f"k{i}": i for i in range(1000)}, {"content_type": "pd", "x": []}]
    variants += [[], "pd", 5, None, True, {"content_type": {"a": 1}}, {"temperature": 0.5}]
    for where in ("request", "input"):
        for parameters in variants:
            body = corpus.body()
            target = body if where == "request" else body["inputs"][0]
            target["parameters"] = parameters
            corpus.add(f"{where} parameters {str(parameters)[:20]}", body)
    body = corpus.body()
    body["parameters"]["foo"] = 1
    reason = "the request has unknown parameter(s) 'foo'; the model takes none"
    corpus.add("unknown parameter", body, status=422, reason=reason)


IDS: list[Any] = ["é", "€", "😀", "\u2028", "\r", "\n", "\r\n", "a\r\nSet-Cookie: x=1", "\x00"]
IDS += ["\t", "\x7f", " lead", "trail ", "", "x" * 257, "x" * 1000, "x" * 100_000]


def _ids(corpus: Corpus) -> None:
    for request_id in IDS:
        name = f"id {request_id[:10]!r} ({len(request_id)} chars)"
        corpus.add(name, {**corpus.body(), "id": request_id}, status=422, reason="request id")
    for request_id in (5, 5.5, True, [], {}):
        corpus.add(f"id {request_id!r}", {**corpus.body(), "id": request_id}, status=422)
    corpus.add("id surrogate", json.dumps(corpus.good)[:-1].encode() + b', "id": "\\ud800"}')
    corpus.add("good id", {**corpus.body(), "id": "req-1"}, status=200)


def _structure(corpus: Corpus) -> None:
    raw = [b"", b"null", b"[]", b"{}", b'"x"', b"1", b"true", b"\xef\xbb\xbf{}", b"{'a': 1}"]
    raw += [b'{"inputs": [] /* c */}', b'{"inputs": []} trailing', b"\xff\xfe{}", b"{" * 3]
    for body in raw:
        corpus.add(f"raw {body!r}", body, status=422)
    shapes: list[Any] = [{"inputs": None}, {"inputs": {}}, {"inputs": "x"}, {"inputs": []}]
    shapes += [{"inputs": [None]}, {"inputs": [1]}, {"inputs": [[]]}, {"outputs": []}]
    for body in shapes:
        corpus.add(f"structure {str(body)[:30]}", body)
    for key in ("name", "shape", "datatype", "data"):
        body = corpus.body()
        del body["inputs"][0][key]
        corpus.add(f"input without {key}", body, status=422, reason=f"inputs.0.{key} is missing")
    body = corpus.body()
    body["inputs"][0]["extra"] = "x" * 10_000
    corpus.add("input with an extra field", body)
    body = corpus.body()
    body["inputs"].append(copy.deepcopy(body["inputs"][0]))
    corpus.add("duplicate input", body, status=422, reason="is given more than once")
    body = corpus.body()
    body["inputs"] = [copy.deepcopy(body["inputs"][0]) for _ in range(1000)]
    corpus.add("1000 inputs", body, status=422)
    body = corpus.body()
    body["inputs"][0]["name"] = "n" * 50_000
    corpus.add("long input name", body, status=422)
    body = corpus.body()
    body["outputs"] = [{"name": "x", "parameters": {"content_type": "nope"}}] * 3
    corpus.add("outputs asked for", body)
    text = json.dumps(corpus.good)
    corpus.add("duplicate keys", text.replace('{"parameters"', '{"inputs": 5, "parameters"', 1))
    corpus.add("invalid utf-8 in a name", text.replace('"alcohol"', '"alc\xff"').encode("latin-1"))


def _truncations(corpus: Corpus) -> None:
    raw = json.dumps(corpus.good).encode()
    for cut in range(1, len(raw), max(1, len(raw) // 60)):
        corpus.add(f"truncated at {cut}", raw[:cut], status=422 if cut < len(raw) - 1 else None)


TOKENS = ["1e999", "-0", "00", "1.", ".5", "NaN", "true", "null", '"1"', "[]", "{}", "-1e-400"]
TOKENS += ["18446744073709551616", "-9223372036854775809", '"\\u0000"', '"\\ud800"', "[[[[1]]]]"]
BYTES = b'{}[]",:0123456789.-eE \\\x00\xff\n\r\t'


def _mutations(corpus: Corpus, count: int = 400, seed: int = 11) -> None:
    """Seeded random edits of the good body's bytes and tokens."""
    rng = random.Random(seed)
    raw = json.dumps(corpus.good).encode()
    numbers = [m.span() for m in re.finditer(rb"-?\d+(\.\d+)?([eE][-+]?\d+)?", raw)]
    for number in range(count):
        body = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(body))
            op = rng.randrange(5)
            if op == 0:
                body[at] = rng.randrange(256)
            elif op == 1:
                body.insert(at, rng.choice(BYTES))
            elif op == 2:
                del body[at]
            elif op == 3:
                end = min(len(body), at + rng.randint(1, 40))
                body[at:at] = body[at:end]
            else:
                start, end = rng.choice(numbers)
                if end <= len(body):
                    body[start:end] = rng.choice(TOKENS).encode()
        corpus.add(f"mutation {number}", bytes(body))


def _http(corpus: Corpus) -> None:
    """Methods, paths, content types, encodings and sizes."""
    good = json.dumps(corpus.good).encode()
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
        reason = None if method == "HEAD" else f"method {method} is not allowed"
        corpus.cases.append(Case(f"method {method}", good, method, status=405, reason=reason))
    for path in ("/v2/health/ready", "/v2/health/live", "/v2", f"/v2/models/{MODEL}"):
        corpus.cases.append(Case(f"POST {path}", good, path=path, status=405))
    paths = ["/v2/models/nope/infer", "/v2/models/%00/infer", "/v2/models/%ff%fe/infer"]
    paths += [f"/v2/models/{'m' * 5000}/infer", f"/v2/models/{MODEL}/versions/9/infer"]
    paths += [f"{INFER}/", f"/v2/models//{MODEL}/infer", "/v2/models/..%2f..%2fetc/infer"]
    paths += ["/v2/models/wine/infer?x=" + "y" * 1000, "/nowhere", "/v2/repository/index"]
    for path in paths:
        corpus.cases.append(Case(f"path {path[:40]}", good, path=path))
    types = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "*/*"]
    types += ["application/jsonx", "application/json; charset=latin-1", ""]
    for content_type in types:
        headers = (("content-type", content_type),)
        status = None if content_type.startswith("application/json;") else 415
        name = f"content type {content_type!r}"
        corpus.cases.append(Case(name, good, headers=headers, status=status))
    corpus.cases.append(Case("no content type", good, headers=(), status=200))
    gzipped = gzip.compress(good)
    for name, body, encoding, status in (
        ("gzip", gzipped, "gzip", 200),
        ("gzip garbage", b"garbage", "gzip", 400),
        ("gzip truncated", gzipped[:-6], "gzip", 400),
        ("gzip bomb", gzip.compress(b" " * 50_000_000), "gzip", 413),
        ("deflate", good, "deflate", 415),
        ("br", good, "br", 415),
        ("gzip twice", gzipped, "gzip, gzip", 415),
    ):
        headers = (*JSON, ("content-encoding", encoding))
        corpus.cases.append(Case(f"encoding {name}", body, headers=headers, status=status))
    over = b" " * (LIMITS["max_request_bytes"] + 1)
    corpus.cases.append(Case("body over the limit", over, status=413, reason="exceeds 262144"))


# -- the server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fuzzed:
    target: LocalTarget
    port: int
    good: dict[str, Any]
    predictions: list[int]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"


@pytest.fixture(scope="module")
def fuzzed(serving_settings: Settings, models: Models) -> Iterator[Fuzzed]:
    """Our runtime behind the guard, with small limits, in an environment of its own."""
    serving = ServingSettings.model_validate({**serving_settings.serving.model_dump(), **LIMITS})
    environment = EnvironmentSettings(name="fuzz", kind="staging")
    settings = serving_settings.model_copy(update={"serving": serving})
    target = LocalTarget(settings, environment)
    spec = DeploymentSpec(
        environment="fuzz", model_name=MODEL, version="1", model_uri=str(models.v1)
    )
    assert target.apply(spec).ready
    record = target.server(MODEL)
    assert record is not None
    rows = models.rows(1)
    yield Fuzzed(
        target, record.http_port, encode_dataframe(rows), list(models.predictions_v1[rows.index])
    )
    target.delete(MODEL)
    target.close()


@pytest.fixture
def client(fuzzed: Fuzzed) -> Iterator[httpx.Client]:
    """One pooled connection: any connection the server drops shows."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=fuzzed.base_url, limits=limits, timeout=10, trust_env=False) as c:
        yield c


def _connection(response: httpx.Response) -> Any:
    stream = response.extensions.get("network_stream")
    return stream.get_extra_info("client_addr") if stream is not None else None


def _problem(case: Case, response: httpx.Response) -> str | None:
    """What is wrong with the answer to ``case``; None when it is right."""
    status = response.status_code
    if status >= 500:
        return f"{status}: {response.text[:200]}"
    if status == 307 and case.path.endswith("/"):  # Starlette's redirect to the path without
        return None if response.headers["location"].endswith(INFER) else "redirected elsewhere"
    if case.status is not None and status != case.status:
        return f"status {status}, expected {case.status}: {response.text[:200]}"
    if response.headers.get("connection", "").lower() == "close":
        return "the server closed the keep-alive connection"
    if case.method == "HEAD":
        return None
    if not response.headers.get("content-type", "").startswith("application/json"):
        return f"content type {response.headers.get('content-type')!r}: {response.text[:200]}"
    body = response.json()
    if status == 200:
        if case.path == INFER and "outputs" not in body:
            return f"200 without outputs: {response.text[:200]}"
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, str) or not error:
        return f"no error reason: {response.text[:200]}"
    if case.reason is not None and case.reason not in error:
        return f"reason {error[:200]!r} lacks {case.reason!r}"
    if len(response.content) > 4000:
        return f"an answer of {len(response.content)} bytes echoes the request"
    return None


def test_the_corpus_gets_no_5xx_and_leaves_the_connection_usable(
    fuzzed: Fuzzed, client: httpx.Client
) -> None:
    cases = build_corpus(fuzzed.good)
    assert len(cases) >= 1000
    assert len({case.name for case in cases}) == len(cases)
    failures: list[str] = []
    statuses: dict[int, int] = {}
    connections = set()
    began = time.monotonic()
    for number, case in enumerate(cases, 1):
        try:
            response = client.request(
                case.method, case.path, content=case.body, headers=dict(case.headers)
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            problem = _problem(case, response)
            connections.add(_connection(response))
            after = client.post(INFER, json=fuzzed.good)
            connections.add(_connection(after))
        except httpx.HTTPError as exc:
            failures.append(f"{case.name}: {type(exc).__name__} {exc}")
            continue
        if problem is not None:
            failures.append(f"{case.name}: {problem}")
        if after.status_code != 200 or after.json()["outputs"][0]["data"] != fuzzed.predictions:
            failures.append(f"{case.name}: the good request after it got {after.text[:200]}")
        if number % 100 == 0:
            assert client.get("/v2/health/ready").status_code == 200, f"not ready after {number}"
    seconds = time.monotonic() - began
    assert not failures, f"{len(failures)} of {len(cases)} failed:\n" + "\n".join(failures[:40])
    # The pooled client used one connection for all of it: no answer ended it.
    assert len(connections) == 1, connections
    assert statuses.get(200, 0) < len(cases) / 4, statuses
    log = fuzzed.target.log_path(MODEL).read_text()
    assert "Traceback" not in log and "Exception in ASGI" not in log
    print(f"{len(cases)} cases in {seconds:.1f} s; statuses {dict(sorted(statuses.items()))}")


# -- on the wire -----------------------------------------------------------------------------

RAW_CASES = {
    "cr in a header": b"GET /v2/health/ready HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
    "lf in a header": b"GET /v2/health/ready HTTP/1.1\r\nX-A: a\nb: c\r\n\r\n",
    "cr in the path": b"GET /v2/he\ralth/ready HTTP/1.1\r\n\r\n",
    "lf in the path": b"GET /v2/he\nalth/ready HTTP/1.1\r\n\r\n",
    "nul in a header": b"GET /v2/health/ready HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
    "bad method": b"BREW /v2 HTTP/1.1\r\n\r\n",
    "not http": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "h2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "two lengths": b"POST /v2 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "length and chunked": b"POST /v2 HTTP/1.1\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad chunk": b"POST /v2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "non-ascii path": "GET /v2/models/é/infer HTTP/1.1\r\n\r\n".encode(),
}


@pytest.mark.parametrize("name", RAW_CASES)
def test_broken_http_gets_a_json_400(fuzzed: Fuzzed, name: str) -> None:
    answer = exchange(fuzzed.port, RAW_CASES[name])
    assert answer is not None, "dropped without an answer"
    assert answer.status == 400 and answer.closes
    assert answer.json()["error"].startswith("the request is not valid HTTP/1.1")


def test_huge_headers_get_431(fuzzed: Fuzzed) -> None:
    for headers in ({"x-big": "a" * 100_000}, {f"x-{i}": "a" * 50 for i in range(2000)}):
        answer = exchange(fuzzed.port, request("GET", "/v2/health/ready", headers=headers))
        assert answer is not None and answer.status == 431 and answer.closes
        assert "exceed 8192 bytes" in answer.json()["error"]


def test_half_sent_requests_are_answered_408_in_bounded_time(fuzzed: Fuzzed) -> None:
    body = json.dumps(fuzzed.good).encode()
    for data in (request("POST", INFER, body)[:30], request("POST", INFER, body)[:-50]):
        with Connection(fuzzed.port) as connection:
            connection.send(data)
            answer = connection.answer()
            assert answer is not None and answer.status == 408
            assert "within 1.5 s" in answer.json()["error"]
            assert answer.seconds < LIMITS["read_timeout"] + 3
            assert connection.closed_by_peer(3)


def test_the_metrics_port_is_guarded_too(fuzzed: Fuzzed) -> None:
    record = fuzzed.target.server(MODEL)
    assert record is not None
    answer = exchange(record.metrics_port, request("GET", "/metrics"))
    assert answer is not None and answer.status == 200 and b"model_infer_request" in answer.body
    with Connection(record.metrics_port) as connection:
        connection.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        answer = connection.answer()
        assert answer is not None and answer.status == 408
    answer = exchange(record.metrics_port, request("GET", "/metrics", headers={"x": "a" * 9000}))
    assert answer is not None and answer.status == 431


def test_a_thousand_stalled_connections_are_let_go(fuzzed: Fuzzed, client: httpx.Client) -> None:
    """Slowloris: stalled clients are answered 408 and closed; others are served meanwhile."""
    body = json.dumps(fuzzed.good).encode()
    stalls = [request("POST", INFER, body)[:40], request("POST", INFER, body)[:-10]]
    began = time.monotonic()
    sockets = []
    try:
        for number in range(1000):
            sock = socket.create_connection((HOST, fuzzed.port), timeout=10)
            sock.sendall(stalls[number % 2])
            sockets.append(sock)
        response = client.post(INFER, json=fuzzed.good)
        assert response.status_code == 200  # served while a thousand stall
        answers = _await_close(sockets, deadline=began + LIMITS["read_timeout"] + 20)
    finally:
        for sock in sockets:
            sock.close()
    seconds = time.monotonic() - began
    assert len(answers) == 1000, f"{1000 - len(answers)} still held after {seconds:.1f} s"
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers)
    assert client.get("/v2/health/ready").status_code == 200


def _await_close(sockets: list[socket.socket], deadline: float) -> list[bytes]:
    """What each socket received until the server closed it (those closed by ``deadline``)."""
    selector = selectors.DefaultSelector()
    received = {}
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        received[sock] = b""
    done = []
    while received and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                chunk = sock.recv(65536)
            except (BlockingIOError, ConnectionResetError):
                chunk = b""
            if chunk:
                received[sock] += chunk
                continue
            selector.unregister(sock)
            done.append(received.pop(sock))
    selector.close()
    return done
