"""Sessions over HTTP: persistent state, isolation, variables, inspection, delete, interrupts."""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from api.schemas import SessionSchema
from tests.integration.conftest import Cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.tiers]


def create_session(cluster: Cluster, **body: Any) -> str:
    response = requests.post(f"{cluster.url}/api/v1/sessions", json=body, timeout=60)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["worker"].startswith(cluster.worker_prefix) and created["expiresAt"] > created["createdAt"]
    return str(created["sessionId"])


def session_view(cluster: Cluster, session_id: str) -> dict[str, Any]:
    response = requests.get(f"{cluster.url}/api/v1/sessions/{session_id}", timeout=30)
    assert response.status_code == 200, response.text
    view = response.json()
    assert SessionSchema().validate(view) == {}
    return view


@pytest.fixture
def session(cluster: Cluster) -> Iterator[str]:
    session_id = create_session(cluster)
    yield session_id
    requests.delete(f"{cluster.url}/api/v1/sessions/{session_id}", timeout=30)


def test_state_persists_across_executions(cluster: Cluster, session: str) -> None:
    first = cluster.execute("import json\nx = 41\ndef inc(v):\n    return v + 1\n"
                            "class Box:\n    pass\nopen('/workspace/note.txt', 'w').write('kept')", sessionId=session)
    assert first["status"] == "success" and first["sessionId"] == session and first["sessionState"] == "kept"
    second = cluster.execute("(inc(x), json.dumps([Box.__name__]), open('/workspace/note.txt').read())",
                             sessionId=session)
    assert ast.literal_eval(second["result"]["repr"]) == (42, '["Box"]', "kept")
    view = session_view(cluster, session)
    assert view["status"] == "ready" and view["executionCount"] == 2
    assert view["variables"]["x"]["type"] == "int" and "json" not in view["variables"]


def test_two_sessions_never_see_each_other(cluster: Cluster) -> None:
    first, second = create_session(cluster), create_session(cluster)
    cluster.execute("secret = 'mine'\nopen('/workspace/s.txt', 'w').write('mine')", sessionId=first)
    probe = cluster.execute("import pathlib\n"
                            "('secret' in dir(), [p.name for p in pathlib.Path('/workspace').iterdir()])",
                            sessionId=second)
    assert ast.literal_eval(probe["result"]["repr"]) == (False, [])
    for session_id in (first, second):
        requests.delete(f"{cluster.url}/api/v1/sessions/{session_id}", timeout=30)


def test_variables_put_then_read_from_code(cluster: Cluster, session: str) -> None:
    response = requests.put(f"{cluster.url}/api/v1/sessions/{session}/variables",
                            json={"variables": {"threshold": 0.5, "names": ["a", "b"]}}, timeout=30)
    assert response.status_code == 200, response.text
    summary = response.json()["variables"]
    assert summary["threshold"]["type"] == "float" and summary["names"]["len"] == 2
    result = cluster.execute("f'{threshold} {names[1]}'", sessionId=session)
    assert result["result"]["repr"] == "'0.5 b'"


def test_variables_given_at_creation_are_there(cluster: Cluster) -> None:
    session_id = create_session(cluster, variables={"seed": 7})
    assert cluster.execute("seed * 6", sessionId=session_id)["result"]["repr"] == "42"
    requests.delete(f"{cluster.url}/api/v1/sessions/{session_id}", timeout=30)


def test_inspection_describes_common_types_with_bounded_work(cluster: Cluster, session: str) -> None:
    result = cluster.execute(
        "import numpy as np, pandas as pd\n"
        "n = 3\ns = 'text'\nitems = [1, 2, 3]\nconfig = {'a': 1}\n"
        "matrix = np.zeros((3, 4), dtype='float32')\n"
        "frame = pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})\n"
        "huge = list(range(10_000_000))", sessionId=session, timeout=20000)
    assert result["status"] == "success", result["error"]
    variables = result["variables"]
    assert variables["n"]["type"] == "int" and variables["n"]["repr"] == "3"
    assert variables["s"]["len"] == 4 and variables["items"]["len"] == 3 and variables["config"]["len"] == 1
    assert variables["matrix"]["shape"] == [3, 4] and variables["matrix"]["dtype"] == "float32"
    assert variables["matrix"]["size"] == 48
    frame = variables["frame"]
    assert frame["shape"] == [2, 2] and frame["columns"] == ["a", "b"] and frame["dtypes"]["a"] == "int64"
    assert "x" in frame["preview"]
    assert variables["huge"]["len"] == 10_000_000 and len(variables["huge"]["repr"]) < 300
    started = time.monotonic()
    view = session_view(cluster, session)
    assert time.monotonic() - started < 1.0
    assert view["variables"]["huge"]["len"] == 10_000_000


def test_a_deleted_session_is_gone_with_its_container(cluster: Cluster) -> None:
    import docker

    session_id = create_session(cluster)
    before = {c.id for c in docker.from_env().containers.list(sparse=True, filters={"label": "penny.mode=session"})}
    assert requests.delete(f"{cluster.url}/api/v1/sessions/{session_id}", timeout=30).status_code == 204
    deadline = time.monotonic() + 10  # a bound, not a measurement: the worker destroys it at once
    while True:
        after = {c.id for c in docker.from_env().containers.list(sparse=True, filters={"label": "penny.mode=session"})}
        if len(before - after) >= 1:
            break
        assert time.monotonic() < deadline, "the session's container outlived its deletion"
        time.sleep(0.05)
    assert requests.get(f"{cluster.url}/api/v1/sessions/{session_id}", timeout=30).status_code == 404
    response = requests.post(f"{cluster.url}/api/v1/execute", json={"code": "1", "sessionId": session_id}, timeout=30)
    assert response.status_code == 404


def test_a_timeout_in_a_session_interrupts_and_keeps_the_state(cluster: Cluster, session: str) -> None:
    cluster.execute("kept = 'yes'", sessionId=session)
    result = cluster.execute("while True:\n    pass", sessionId=session, timeout=1000)
    assert result["status"] == "timeout" and result["sessionState"] == "kept"
    assert result["error"]["type"] == "KeyboardInterrupt"
    assert cluster.execute("kept", sessionId=session)["result"]["repr"] == "'yes'"


def test_an_uninterruptible_hang_loses_the_session(open_cluster: Cluster) -> None:
    cluster, session = open_cluster, create_session(open_cluster)  # signal is blocked by the default policy
    result = cluster.execute("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
                             sessionId=session, timeout=1000)
    assert result["status"] == "timeout" and result["sessionState"] == "lost"
    assert session_view(cluster, session)["status"] == "lost"
    response = requests.post(f"{cluster.url}/api/v1/execute", json={"code": "1", "sessionId": session}, timeout=30)
    assert response.status_code == 409 and response.json()["error"]["details"]["status"] == "lost"


def test_memory_exhaustion_loses_the_session_without_recreating_it(cluster: Cluster, session: str) -> None:
    cluster.execute("x = 1", sessionId=session)
    result = cluster.execute("b = bytearray(2 * 1024**3)\nb[::4096] = b'x' * len(b[::4096])", sessionId=session)
    assert result["status"] == "memory_exceeded" and result["sessionState"] == "lost"
    assert session_view(cluster, session)["status"] == "lost"


def test_executions_of_a_session_run_in_order(cluster: Cluster, session: str) -> None:
    jobs = [cluster.submit(f"import time\ntime.sleep(0.05)\ntry:\n    log\nexcept NameError:\n    log = []\n"
                           f"log = log + [{i}]\nlog",
                           sessionId=session) for i in range(6)]
    results = []
    for job_id in jobs:
        events = list(cluster.events(job_id))
        results.append(events[-1]["data"])
    assert [ast.literal_eval(r["result"]["repr"]) for r in results] == [list(range(i + 1)) for i in range(6)]


def test_sessions_are_listed_for_their_owner(cluster: Cluster, session: str) -> None:
    listed = requests.get(f"{cluster.url}/api/v1/sessions", timeout=30).json()["sessions"]
    assert session in {view["sessionId"] for view in listed}


def test_a_session_reports_its_resources(cluster: Cluster, session: str) -> None:
    cluster.execute("data = bytearray(30 * 1024 * 1024)\ndata[::4096] = b'x' * len(data[::4096])\n"
                    "open('/workspace/blob', 'wb').write(b'y' * 5 * 1024 * 1024)", sessionId=session)
    deadline = time.monotonic() + 10
    while True:
        resources = session_view(cluster, session)["resources"]
        if resources.get("memoryBytes") and resources["memoryBytes"] > 30 * 1024 * 1024 and resources["diskBytes"]:
            break
        assert time.monotonic() < deadline, f"resources never reported: {resources}"
        time.sleep(0.5)
    assert resources["diskBytes"] >= 5 * 1024 * 1024
