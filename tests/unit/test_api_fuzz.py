"""Property-based fuzz of every API endpoint that takes a body or parameters: never a 5xx, the envelope on 4xx.

The real Flask app runs against fakeredis and FakeCluster, a dispatcher that plays every worker at once:
stateless jobs end at once, sessions start ready and run their jobs when kicked. So requests that pass
validation go all the way (submit, wait for the result, answer) without waiting on anything.

Each endpoint gets MAX_EXAMPLES generated requests: arbitrary JSON (deep nesting, lone surrogates, huge and
non-finite numbers, wrong types, nulls), raw bytes that are not JSON or not UTF-8, bodies shaped like valid
requests with fuzzed fields, and odd strings in path and query parameters. One generated example is sent to
every endpoint of its group (each body endpoint gets the fields its schema knows), which keeps the file near
a minute. Generation is derandomized, so CI replays the same requests; a failure prints the request set.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import fakeredis
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.json_body import MAX_JSON_DEPTH
from api.schemas import ErrorEnvelopeSchema
from api.services import Services
from core import keys
from core.models import ExecutionRequest, ExecutionResult, JobStatus, SessionStatus
from core.registry import WorkerRegistry
from core.sessions import Reservation
from core.settings import Settings

MAX_EXAMPLES = 2000
TENANT_KEY = "fuzz-tenant-key-0123456789"
ADMIN_KEY = "fuzz-admin-key-0123456789"
API = "/api/v1"
ENVELOPE = ErrorEnvelopeSchema()


# ---- the cluster behind the API ---------------------------------------------------------------------------

class FakeCluster:
    """A dispatcher that is every worker at once: each job ends `success` as soon as it is handed over."""

    def __init__(self) -> None:
        self.services: Services | None = None  # set once create_app has built them

    def send(self, task: str, args: list[Any], queue: str) -> None:
        services = self.services
        assert services is not None
        if task == keys.EXECUTE_TASK:
            assert args == []  # a doorbell: the job waits in the fair queue
            job_id = services.fair_queue.pop()
            assert job_id is not None
            self._run(services, job_id)
        elif task == keys.SESSION_CREATE_TASK:
            session_id = args[0]
            services.sessions.set_status(session_id, SessionStatus.READY)
            services.redis.rpush(keys.session_created_key(session_id),
                                 json.dumps({"ok": True, "reason": None, "worker": "fake"}))
        elif task == keys.SESSION_KICK_TASK:
            while (job_id := services.sessions.pop_job(args[0])) is not None:
                self._run(services, job_id)
        else:
            assert task == keys.SESSION_DELETE_TASK, task

    @staticmethod
    def _run(services: Services, job_id: str) -> None:
        claimed = services.store.claim(job_id, "fake")
        if claimed is None:  # cancelled while queued
            return
        request, _ = claimed
        variables = {name: {"type": type(value).__name__, "repr": repr(value)[:80]}
                     for name, value in request.variables.items()}
        packages = ({"installed": [{"name": spec, "version": "1.0"} for spec in request.packages], "failed": []}
                    if request.packages else None)
        services.store.finish(ExecutionResult(
            job_id=job_id, status=JobStatus.SUCCESS, session_id=request.session_id, variables=variables,
            packages=packages, worker="fake", session_state="kept" if request.session_id else None))
        if request.session_id:
            services.sessions.record_execution(request.session_id, variables=variables, lost=False)


@dataclass
class Api:
    """The app under test, and the real jobs and sessions the requests name (see Ref)."""

    client: FlaskClient
    services: Services
    pool: dict[str, str] = field(default_factory=dict)
    made: int = 0

    def resolve(self, ref: Ref) -> str:
        """The id ref stands for: made for this request if fresh, else the one kept for reuse."""
        if ref.fresh:
            return self._make(ref.kind)
        if ref.kind not in self.pool:
            self.pool[ref.kind] = self._make(ref.kind)
        return self.pool[ref.kind]

    def _make(self, kind: str) -> str:
        self.made += 1
        name = f"{self.made:032x}"  # a well-formed id (core.ids): a malformed one is 404 at the route
        if kind in ("queued", "finished"):
            assert self.services.store.create(name, ExecutionRequest(code="1", timeout_ms=1000, tenant="fuzz"))
            if kind == "finished":
                FakeCluster._run(self.services, name)
            return name
        reservation = self.services.sessions.reserve(name, tenant="fuzz", worker="fake", max_sessions=1 << 30,
                                                     idle_timeout_ms=3_600_000)
        assert reservation is Reservation.RESERVED
        self.services.sessions.set_status(name, {"live": SessionStatus.READY, "lost": SessionStatus.LOST}[kind])
        return name

    def delete_sessions(self) -> None:
        """Delete the tenant's sessions but the kept ones: each reservation reads them all, so none pile up."""
        for session_id in self.services.sessions.ids_of_tenant("fuzz"):
            if session_id not in self.pool.values():
                self.services.sessions.delete(session_id)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    client = fakeredis.FakeRedis()
    WorkerRegistry(client, ttl_s=3600).beat("fake", {"name": "fake", "pool": {"idle": 1}, "maxSessions": 1 << 30,
                                                     "heartbeatMs": int(time.time() * 1000)})
    config = Settings(max_execution_time=5000, max_code_bytes=20_000, max_queue_depth=1 << 30,
                      heartbeat_ttl_seconds=3600, penny_api_keys=((TENANT_KEY, "fuzz"),),
                      penny_admin_keys=(ADMIN_KEY,), tenant_max_active_jobs=1 << 30, tenant_max_sessions=1 << 30,
                      audit_log_path=str(tmp_path_factory.mktemp("audit") / "audit.jsonl"),
                      audit_stream_maxlen=100,  # GET /audit scans the stream: keep each scan short
                      rate_limit_enabled=False)  # thousands of requests a second: bodies, not rates, are tested here
    cluster = FakeCluster()
    app = create_app(config, client=client, dispatcher=cluster)
    cluster.services = app.extensions["penny"]
    yield Api(app.test_client(), app.extensions["penny"])
    client.close()


# ---- what requests are made of ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Ref:
    """Stands for a real id: a `queued`/`finished` job, a `live`/`lost` session; fresh ones for requests that
    change them (DELETE), one kept for reuse otherwise."""

    kind: str
    fresh: bool = False


@dataclass(frozen=True)
class Raw:
    """JSON text put into a body as is (what json.dumps will not write: deep nesting, NaN, 1e999, ...)."""

    text: str


def dump(value: Any, resolve: Callable[[Ref], str], *, ascii_only: bool = True) -> str:
    """value as JSON text; Raw pieces verbatim, Refs as the id they resolve to."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Ref):
        return json.dumps(resolve(value))
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key, ensure_ascii=ascii_only)}:{dump(item, resolve, ascii_only=ascii_only)}"
                              for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(item, resolve, ascii_only=ascii_only) for item in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


# Every code point, lone surrogates included (sent as \udXXX escapes, or as raw bytes that are not UTF-8).
ANY_CHAR = st.characters(exclude_categories=())
SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
odd_text = st.one_of(
    st.text(ANY_CHAR, max_size=20),
    st.text(st.one_of(ANY_CHAR, SURROGATE), min_size=1, max_size=8),
    st.sampled_from(["", " ", "\x00", "\n", "..", "../..", "%", "%00", "%ff", "/", "?", "#", "\\", "\ud800",
                     "\udfff\ud800", "\U0001f600", "0-0", "1-1", "²", "١٢", "9" * 30, "x" * 3000, "null",
                     "__proto__", "-1", "0x10", "1e3", "NaN", "Infinity"]),
)

# Numbers json.dumps will not write: huge integers (past Python's 4300-digit limit), overflowing and
# non-finite floats, odd spellings.
raw_number = st.one_of(
    st.integers(min_value=1, max_value=6000).map(lambda digits: Raw("9" * digits)),
    st.sampled_from(["1e999", "-1e999", "1E400", "NaN", "Infinity", "-Infinity", "-0", "-0.0", "0e0",
                     "1.7976931348623157e308", "5e-324", "123456789012345678901234567890", "1.0e+2"]).map(Raw),
)


def _nested(depth: int, kind: str, inner: str) -> Raw:
    if kind == "[":
        return Raw("[" * depth + inner + "]" * depth)
    if kind == "{":
        return Raw('{"a":' * depth + inner + "}" * depth)
    return Raw('[{"a":' * (depth // 2) + inner + "}]" * (depth // 2))  # alternating


depths = st.one_of(st.integers(min_value=0, max_value=200),
                   st.sampled_from([MAX_JSON_DEPTH - 2, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1,
                                    900, 1000, 5000, 20_000]))
deep_value = st.builds(_nested, depths, st.sampled_from(["[", "{", "mix"]),
                       st.sampled_from(["1", "null", '"\\ud800"', "[]", "{}", ""]))

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**40), max_value=10**40),
                    st.floats(allow_nan=False, allow_infinity=False), odd_text, raw_number)
json_values = st.recursive(
    scalars, lambda children: st.lists(children, max_size=4) | st.dictionaries(odd_text, children, max_size=4),
    max_leaves=8) | deep_value


def mostly(percent: int, usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """usual about percent% of the time, else other (repeating a branch in one_of does not weight it: Hypothesis
    steers away from branches that hold no more choices)."""
    return st.integers(min_value=0, max_value=99).flatmap(lambda roll: usual if roll < percent else other)


def loose(proper: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right type for a field, sometimes any JSON at all."""
    return mostly(85, proper, json_values)


identifiers = mostly(85, st.builds(str.__add__, st.sampled_from("abxyXY_"), st.text("abcxyzXY_019", max_size=7)),
                     st.one_of(st.sampled_from(["__x", "__import__", "class", "_", "x" * 300, "1a"]), odd_text))
variables = mostly(80, st.dictionaries(identifiers, json_values, max_size=4), deep_value)

snippets = st.sampled_from([
    "1", "6*7", "print('hi')", "import os", "import numpy as np\nnp.arange(3)", "__import__('os')",
    "open('/etc/passwd').read()", "().__class__.__bases__[0].__subclasses__()", "def f(:", "\x00", "x = '\ud800'",
    "lambda: (yield)", "async def f(): await g()", "while True: pass", "#" * 19_000, "#" * 20_001,
])
deep_code = st.builds(lambda depth, template: template[0] * depth + template[1] + template[2] * depth,
                      st.sampled_from([10, 100, 199, 200, 1000, 5000]),
                      st.sampled_from([("-", "1", ""), ("(", "1", ")"), ("[", "", "]"), ("not ", "x", ""),
                                       ("lambda:", "1", ""), ("", "1", "+1"), ("", "x", ".a"), ("", "f", "()"),
                                       ("{1:", "1", "}"), ("if 1:\n" + " ", "pass", "")]))
code = st.one_of(st.text(ANY_CHAR, max_size=200), snippets, deep_code,
                 st.text(st.one_of(ANY_CHAR, SURROGATE), min_size=1, max_size=20))

allowlisted = st.sampled_from(["numpy", "pandas", "tabulate", "tabulate>=0.9", "numpy[extra]>=1.26", "NUMPY",
                               "scikit_learn"])
package_specs = mostly(75, allowlisted, st.one_of(st.sampled_from([
    "left-pad", "tabulate==0.1", "numpy; python_version<'3'", "pkg @ file:///etc/passwd", "-e .",
    "--index-url http://x", "numpy==", "numpy>=1,<0", "a" * 300]), odd_text))
package_lists = st.lists(package_specs, max_size=3)
session_ids = mostly(80, st.sampled_from([Ref("live"), Ref("live"), Ref("live"), Ref("lost")]), odd_text)
fresh_session_ids = mostly(30, st.sampled_from([Ref("live", fresh=True), Ref("lost", fresh=True)]), odd_text)
timeouts = mostly(70, st.integers(min_value=1, max_value=5000), st.one_of(
    st.integers(min_value=-10, max_value=6000), st.sampled_from([0, 5001, 10**20]), st.floats(), st.text(max_size=5),
    raw_number))
plot_formats = mostly(80, st.lists(st.sampled_from(["png", "svg"]), min_size=1, max_size=2),
                      st.lists(st.sampled_from(["png", "svg", "pdf", "PNG"]), max_size=3))
extra_fields = st.dictionaries(odd_text, json_values, min_size=1, max_size=2)


# One generated body serves every body endpoint: each gets the fields it knows (what a client of that
# endpoint would send: its required ones and some optional ones), or now and then every field, the others'
# as unknown extras. Each value is loosely typed.
request_fields = st.fixed_dictionaries({
    "code": loose(code), "variables": loose(variables), "sessionId": loose(mostly(90, session_ids, st.none())),
    "packages": loose(package_lists), "timeout": loose(timeouts), "plotFormats": loose(plot_formats),
    "strict": loose(st.booleans()), "includeWarnings": loose(st.booleans()), "force": loose(st.booleans()),
})
# Which optional fields a body carries.
optional_fields = st.fixed_dictionaries({
    name: mostly(percent, st.just(True), st.just(False)) for name, percent in {
        "code": 50, "variables": 40, "sessionId": 40, "packages": 30, "timeout": 40, "plotFormats": 20,
        "strict": 30, "includeWarnings": 30, "force": 30}.items()})


@dataclass(frozen=True)
class Shaped:
    """A request-shaped body: every field's value, which optional ones to send, and unknown extras."""

    fields: dict[str, Any]
    optional: dict[str, bool]
    own_fields_only: bool
    required_left_out: bool
    extra: dict[str, Any]

    def for_endpoint(self, known: frozenset[str], required: frozenset[str]) -> dict[str, Any]:
        """The body a client of the endpoint (known fields, required ones) would send."""
        sent = {name for name in self.fields if self.optional[name]}
        sent |= required if not self.required_left_out else set()
        if self.own_fields_only:
            sent &= known
        return {**self.extra, **{name: self.fields[name] for name in sorted(sent)}}


shaped_bodies = st.builds(Shaped, request_fields, optional_fields, mostly(85, st.just(True), st.just(False)),
                          mostly(5, st.just(True), st.just(False)), mostly(90, st.just({}), extra_fields))

BODY_LITERALS = [b"", b" ", b"null", b"[]", b"1", b'"code"', b"{", b"}", b"{}", b'{"code": "1",}', b"{'code': '1'}",
                 b'{"code": "1"} {"code": "2"}', b'{"code": "1", "code": 2}', b"\xef\xbb\xbf{}",
                 '{"code": "1"}'.encode("utf-16"), b'{"code": "\xff"}', b'{"code": "\xed\xa0\x80"}',
                 b'{"code": "1\x00"}', b'{"code": "\\x41"}', b'{"code": "\\u00"}', b'{"code": "a\nb"}',
                 b'{"code": "\\ud800"}', b'{"code": "\\ud83d\\ude00"}', b'{"code": "\\ude00\\ud83d"}',
                 b"[" * 20_000, b"{" * 20_000, b'{"a":"' + b"\\" * 1001 + b'"}']

# Anything at all: the same body goes to every endpoint.
unshaped_bodies = st.one_of(json_values, st.binary(max_size=64), st.sampled_from(BODY_LITERALS),
                            st.text(ANY_CHAR, max_size=64).map(lambda text: text.encode("utf-8", "surrogatepass")))
any_body = mostly(75, shaped_bodies, unshaped_bodies)

content_types = mostly(90, st.just("application/json"), st.sampled_from([
    None, "text/plain", "application/json; charset=utf-8", "application/json; charset=latin-1",
    "application/vnd.api+json", "application/x-www-form-urlencoded", "multipart/form-data", "application/jsonx"]))
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)
tenant_auth = f"Bearer {TENANT_KEY}"
authorization = mostly(90, st.just(tenant_auth), st.one_of(header_text, st.sampled_from([
    None, f"Bearer {ADMIN_KEY}", "Bearer", "Bearer ", "Basic abc", f"bearer  {TENANT_KEY} ", f"Bearer {TENANT_KEY}x"])))
event_ids = st.one_of(st.sampled_from(["0-0", "1-0", "0", "1-1-1", "-", "18446744073709551615-0",
                                       "18446744073709551616-0", "99999999999999999999-0", "١-١", "²-1", " 1-1 ",
                                       "1-1\n", "0-1"]),
                      st.builds("{}-{}".format, st.integers(min_value=0, max_value=10**22),
                                st.integers(min_value=0, max_value=10**22)), header_text)
job_ids = mostly(50, st.sampled_from([Ref("queued"), Ref("finished")]), odd_text)
fresh_job_ids = mostly(30, st.sampled_from([Ref("queued", fresh=True), Ref("finished", fresh=True)]), odd_text)
session_path_ids = mostly(60, session_ids, odd_text)
audit_times = st.one_of(st.sampled_from(["", "0", "1700000000000", "9" * 30, "-1", "²", "١٢٣", "2024-01-01",
                                         "2024-01-01T00:00:00Z", "2024-01-01T00:00:00+05:00", "2024-13-45",
                                         "+999999-01-01", "9999-12-31T23:59:59", "0001-01-01", "1e3"]), odd_text)


@dataclass(frozen=True)
class Call:
    """One request; path_id fills the path's {id}."""

    method: str
    path: str
    path_id: Any = None
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    content_type: str | None = None
    auth: str | None = tenant_auth
    headers: dict[str, str] = field(default_factory=dict)
    ascii_only: bool = True


@dataclass(frozen=True)
class BodyEndpoint:
    """An endpoint that takes a JSON body: the fields its schema knows, and which of them it requires."""

    method: str
    path: str
    fields: frozenset[str]
    required: frozenset[str]
    session_in_path: bool = False


EXECUTE_FIELDS = frozenset({"code", "timeout", "variables", "sessionId", "packages", "plotFormats", "strict"})
BODY_ENDPOINTS = {
    "POST /execute": BodyEndpoint("POST", "/execute", EXECUTE_FIELDS, frozenset({"code"})),
    "POST /execute/stream": BodyEndpoint("POST", "/execute/stream", EXECUTE_FIELDS, frozenset({"code"})),
    "POST /jobs": BodyEndpoint("POST", "/jobs", EXECUTE_FIELDS, frozenset({"code"})),
    "POST /sessions": BodyEndpoint("POST", "/sessions", frozenset({"packages", "variables"}), frozenset()),
    "PUT /sessions/{id}/variables": BodyEndpoint("PUT", "/sessions/{id}/variables", frozenset({"variables"}),
                                                 frozenset({"variables"}), session_in_path=True),
    "POST /validate": BodyEndpoint("POST", "/validate", frozenset({"code", "strict", "includeWarnings"}),
                                   frozenset({"code"})),
    "POST /packages/install": BodyEndpoint("POST", "/packages/install", frozenset({"sessionId", "packages", "force"}),
                                           frozenset({"sessionId", "packages"})),
}


@st.composite
def body_calls(draw: st.DrawFn) -> dict[str, Call]:
    """One generated body (and its headers), made into a request for every endpoint that takes a body."""
    body = draw(any_body)
    content_type, auth, ascii_only = draw(content_types), draw(authorization), draw(st.booleans())
    session_id = draw(session_path_ids)
    return {name: Call(endpoint.method, endpoint.path, path_id=session_id if endpoint.session_in_path else None,
                       body=body.for_endpoint(endpoint.fields, endpoint.required) if isinstance(body, Shaped) else body,
                       content_type=content_type, auth=auth, ascii_only=ascii_only)
            for name, endpoint in BODY_ENDPOINTS.items()}


resume_positions = st.fixed_dictionaries({}, optional={
    "query": event_ids, "header": event_ids.filter(lambda text: "\n" not in text)})
package_queries = st.fixed_dictionaries({}, optional={
    "search": odd_text, "category": st.one_of(st.sampled_from(["visualization", "data-science", "ml", ""]), odd_text)})
audit_queries = st.fixed_dictionaries({}, optional={
    "tenant": mostly(60, st.just("fuzz"), odd_text),
    "status": mostly(60, st.sampled_from([status.value for status in JobStatus]), odd_text),
    "since": audit_times, "until": audit_times,
    "limit": mostly(60, st.integers(min_value=1, max_value=20).map(str), st.one_of(
        st.sampled_from(["1000", "1001", "0", "-1", "²", "١", "9" * 30, "9" * 5000, "1.5"]), odd_text)),
    "cursor": st.one_of(event_ids, st.sampled_from(["²-1", "١-١", "1-", "-1", "0-0", "9" * 5000 + "-0"])),
})
admin_authorization = mostly(85, st.just(f"Bearer {ADMIN_KEY}"), authorization)
# Only finished or unknown jobs: a queued job's stream would wait for it to run.
streamable_job_ids = mostly(60, st.just(Ref("finished")), odd_text)


@st.composite
def parameter_calls(draw: st.DrawFn) -> dict[str, Call]:
    """Requests whose parameters are a job or session id in the path, or in the query string."""
    auth = draw(authorization)
    resume = draw(resume_positions)
    return {
        "GET /jobs/{id}": Call("GET", "/jobs/{id}", draw(job_ids), auth=auth),
        "GET /jobs/{id}/events": Call(
            "GET", "/jobs/{id}/events", draw(streamable_job_ids), auth=auth,
            query={"lastEventId": resume["query"]} if "query" in resume else {},
            headers={"Last-Event-ID": resume["header"]} if "header" in resume else {}),
        "DELETE /jobs/{id}": Call("DELETE", "/jobs/{id}", draw(fresh_job_ids), auth=auth),
        "GET /sessions/{id}": Call("GET", "/sessions/{id}", draw(session_path_ids), auth=auth),
        "DELETE /sessions/{id}": Call("DELETE", "/sessions/{id}", draw(fresh_session_ids), auth=auth),
        "GET /packages": Call("GET", "/packages", query=draw(package_queries), auth=auth),
        "GET /audit": Call("GET", "/audit", query=draw(audit_queries), auth=draw(admin_authorization)),
    }


# ---- sending and judging ----------------------------------------------------------------------------------

def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # what a client that does not check would put on the wire


def send(api: Api, call: Call) -> Any:
    """Make the request; the response with its body read to the end (streams included)."""
    path = call.path
    if call.path_id is not None:
        path_id = api.resolve(call.path_id) if isinstance(call.path_id, Ref) else call.path_id
        path = path.replace("{id}", quote(_bytes(path_id), safe=""))
    data: bytes | None = None
    if isinstance(call.body, bytes):
        data = call.body
    elif call.body is not None:
        data = _bytes(dump(call.body, api.resolve, ascii_only=call.ascii_only))
    headers = dict(call.headers)
    if call.auth is not None:
        headers["Authorization"] = call.auth
    query = urlencode({name: _bytes(value) for name, value in call.query.items()})
    response = api.client.open(API + path, method=call.method, data=data, content_type=call.content_type,
                               headers=headers, query_string=query)
    response.get_data()  # an SSE body runs its generator here: an exception in it must surface too
    return response


def check(name: str, call: Call, response: Any) -> None:
    """No 5xx; every 4xx is the JSON error envelope; every other answer is well-formed."""
    status = response.status_code
    text = response.get_data(as_text=True)
    assert status < 500, f"{name} answered {status}: {text[:500]}\nrequest: {call!r:.2000}"
    if 300 <= status < 400:  # an empty id: /jobs//events is redirected to /jobs/events (merged slashes)
        assert response.headers["Location"], (name, status)
    elif status >= 400:
        assert response.mimetype == "application/json", (name, status, response.mimetype)
        body = json.loads(text)
        assert ENVELOPE.validate(body) == {}, (name, body)
        assert body["error"]["code"].replace("_", "").isalpha() and body["error"]["code"].islower(), body
    elif response.mimetype == "application/json":
        json.loads(text)
    else:
        assert status == 204 or response.mimetype == "text/event-stream", (name, status, response.mimetype)


def fuzz(api: Api, requests: st.SearchStrategy[dict[str, Call]]) -> dict[str, Counter[int]]:
    """Send MAX_EXAMPLES generated request sets; each endpoint's status codes."""
    statuses: dict[str, Counter[int]] = {}

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(requests)
    def run(calls: dict[str, Call]) -> None:
        for name, call in calls.items():
            response = send(api, call)
            statuses.setdefault(name, Counter())[response.status_code] += 1
            check(name, call, response)
        api.delete_sessions()

    run()
    for name, seen in statuses.items():
        assert sum(seen.values()) >= MAX_EXAMPLES, (name, seen)
        # The generated requests get past validation as well as being refused by it.
        assert any(200 <= status < 300 for status in seen) and any(400 <= status < 500 for status in seen), (
            name, seen)
    return statuses


def test_no_generated_body_gets_a_5xx_and_every_4xx_is_the_envelope(api: Api) -> None:
    assert set(fuzz(api, body_calls())) == set(BODY_ENDPOINTS)


def test_no_generated_path_or_query_parameter_gets_a_5xx(api: Api) -> None:
    assert set(fuzz(api, parameter_calls())) == {"GET /jobs/{id}", "GET /jobs/{id}/events", "DELETE /jobs/{id}",
                                                 "GET /sessions/{id}", "DELETE /sessions/{id}", "GET /packages",
                                                 "GET /audit"}
