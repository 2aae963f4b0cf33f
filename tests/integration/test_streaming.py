"""Live output over SSE, resuming with Last-Event-ID, and cancellation."""

from __future__ import annotations

import time

import pytest
import requests

from tests.integration.conftest import Cluster, parse_sse

pytestmark = [pytest.mark.redis, pytest.mark.docker]

TICKER = "import time\nfor i in range(4):\n    print(f'tick {i}', flush=True)\n    time.sleep(0.5)\n'end'"


def test_stream_delivers_ordered_events_with_ids_and_output_before_the_end(cluster: Cluster) -> None:
    arrivals: list[tuple[float, dict]] = []
    with requests.post(f"{cluster.url}/api/v1/execute/stream", json={"code": TICKER}, stream=True,
                       timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in parse_sse(response):
            arrivals.append((time.monotonic(), event))
    events = [event for _, event in arrivals]
    kinds = [event["event"] for event in events]
    assert kinds[:2] == ["queued", "started"] and kinds[-1] == "result"
    assert [e["data"]["text"] for e in events if e["event"] == "stdout"] == [f"tick {i}\n" for i in range(4)]
    ids = [tuple(map(int, e["id"].split("-"))) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    first_output_at = next(at for at, e in arrivals if e["event"] == "stdout")
    assert arrivals[-1][0] - first_output_at > 1.0  # the first tick arrived long before the end
    assert events[-1]["data"]["result"]["repr"] == "'end'"


def test_reconnecting_with_last_event_id_resumes_exactly(cluster: Cluster) -> None:
    job_id = cluster.submit(TICKER)
    seen = []
    for event in cluster.events(job_id):
        seen.append(event)
        if event["event"] == "stdout":
            break  # drop the connection mid-stream
    resumed = list(cluster.events(job_id, last_event_id=seen[-1]["id"]))
    everything = list(cluster.events(job_id))
    assert seen + resumed == everything
    assert everything[-1]["event"] == "result"
    again = list(cluster.events(job_id, last_event_id=everything[-2]["id"]))  # after the job finished
    assert again == everything[-1:]
    assert list(cluster.events(job_id, last_event_id=everything[-1]["id"])) == []  # ends at once


def test_cancelling_a_running_job_kills_it(cluster: Cluster) -> None:
    job_id = cluster.submit("import time\nprint('started', flush=True)\ntime.sleep(60)")
    for event in cluster.events(job_id):
        if event["event"] == "stdout":
            break
    response = requests.delete(f"{cluster.url}/api/v1/jobs/{job_id}", timeout=30)
    assert response.status_code == 202
    events = list(cluster.events(job_id))
    assert events[-1]["event"] == "result"
    result = events[-1]["data"]
    assert result["status"] == "cancelled" and result["metrics"]["durationMs"] < 30_000
    assert cluster.job(job_id)["status"] == "cancelled"


def test_cancelling_a_queued_job_means_it_never_runs(cluster: Cluster) -> None:
    blockers = [cluster.submit("import time\ntime.sleep(4)") for _ in range(8)]  # every pool slot, and more
    victim = cluster.submit("open('/tmp/ran', 'w').write('1')\nprint('ran')")
    assert cluster.job(victim)["status"] == "queued"
    response = requests.delete(f"{cluster.url}/api/v1/jobs/{victim}", timeout=30)
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    for job_id in blockers:
        list(cluster.events(job_id))  # wait until the queue has drained past the victim
    kinds = [event["event"] for event in cluster.events(victim)]
    assert kinds == ["queued", "result"]
    view = cluster.job(victim)
    assert view["status"] == "cancelled" and view["result"]["stdout"] == "" and view["worker"] is None
