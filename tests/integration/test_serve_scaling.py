"""One model served on its own (its replicas answer HTTP): autoscaling under a load step,
a replica killed by PID under load, and overload shedding. Real local Serve on 127.0.0.1;
every load is bounded in requests and time."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import httpx
import pytest

from tests.helpers import publish_bilstm
from tests.integration.test_serve import replica_stats

pytestmark = pytest.mark.slow  # load steps, replica restarts

PORT = 18433
BASE = f"http://127.0.0.1:{PORT}"
KEY = "scaling-key-91c2"
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXT = "My name is Wolfgang and I live in Berkeley, California."
DEPLOYMENT = "tagger-ner"


@pytest.fixture(scope="module")
def registry(ray_local, tmp_path_factory):
    from ray import serve

    tmp = tmp_path_factory.mktemp("scaling")
    publish_bilstm(tmp / "registry", "ner", seed=3)
    (tmp / "keys").write_text(KEY + "\n")
    yield tmp
    serve.shutdown()


def deploy_one(tmp, **model) -> None:
    from raytag.serving.deploy import app_config, deploy

    args = {"registry_root": str(tmp / "registry"), "api_keys_file": str(tmp / "keys"),
            "models": [{"name": "ner", "ref": "ner", "num_cpus": 0.25, **model}]}
    deploy(app_config(args, port=PORT))


def running(deployment: str = DEPLOYMENT) -> int:
    from ray import serve

    status = serve.status().applications["raytag"].deployments[deployment]
    return int(status.replica_states.get("RUNNING", 0))


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {seconds:.0f}s waiting for {what}"
        time.sleep(0.25)


def test_one_model_is_served_by_its_own_replicas(registry):
    from ray import serve

    deploy_one(registry, autoscaling={"min_replicas": 1, "max_replicas": 1})
    deployments = set(serve.status().applications["raytag"].deployments)
    assert deployments == {DEPLOYMENT}, "one model needs no separate ingress hop"
    with httpx.Client(base_url=BASE, timeout=30) as client:
        body = client.post("/v1/models/ner/tag", json={"texts": [TEXT, "Berkeley"]}, headers=AUTH).json()
        assert body["model"] == "ner" and body["version"] == 1 and len(body["results"]) == 2
        assert client.post("/v1/models/other/tag", json={"text": "x"}, headers=AUTH).status_code == 404
        assert client.get("/v1/models", headers=AUTH).json()["models"][0]["name"] == "ner"
        assert client.get("/readyz").status_code == 200
        # The try page and the docs' own files come from the model's replicas too.
        page = client.get("/")
        assert page.status_code == 200 and 'id="model"' in page.text
        assert client.get("/ui/try.js").status_code == 200
        assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 401  # docs: private by default
        assert client.get("/docs-assets/swagger-ui-bundle.js", headers=AUTH).status_code == 200


def test_load_step_scales_up_then_back_down_without_failures(registry):
    deploy_one(registry, autoscaling={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 2,
                                      "upscale_delay_s": 0.5, "downscale_delay_s": 3})
    wait_for(lambda: running() == 1, 60, "one replica before the load")
    codes: list[int] = []
    peak = 1

    async def step() -> None:
        nonlocal peak
        stop = asyncio.Event()

        async def client_loop(client: httpx.AsyncClient) -> None:
            while not stop.is_set() and len(codes) < 20_000:
                r = await client.post("/v1/models/ner/tag", json={"texts": [TEXT] * 4}, headers=AUTH)
                codes.append(r.status_code)

        async with httpx.AsyncClient(base_url=BASE, timeout=30) as client:
            tasks = [asyncio.create_task(client_loop(client)) for _ in range(12)]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                peak = max(peak, await asyncio.to_thread(running))
                if peak >= 2:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(2.0)  # keep serving on both replicas for a moment
            stop.set()
            await asyncio.gather(*tasks)

    asyncio.run(step())
    assert peak >= 2, "a 12-client load step never scaled the tagger to 2 replicas"
    assert codes and set(codes) == {200}, {c: codes.count(c) for c in set(codes)}
    wait_for(lambda: running() == 1, 90, "the downscale back to 1 replica after the load")


def test_killed_replica_is_replaced_and_fails_almost_nothing(registry):
    from ray import serve

    deploy_one(registry)  # the default: two replicas
    wait_for(lambda: running() == 2, 90, "two replicas")
    handle = serve.get_deployment_handle(DEPLOYMENT, app_name="raytag")
    pids = set(replica_stats(handle, 2))
    victim = min(pids)
    results: list[tuple[float, int]] = []  # (seconds, status; 0 = transport error)
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=BASE, timeout=30) as client:
            while not stop.is_set() and len(results) < 50_000:
                started = time.monotonic()
                try:
                    status = client.post("/v1/models/ner/tag", json={"text": TEXT}, headers=AUTH).status_code
                except httpx.HTTPError:
                    status = 0
                results.append((time.monotonic() - started, status))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        os.kill(victim, signal.SIGKILL)
        time.sleep(10)
    finally:
        stop.set()
        for t in threads:
            t.join()
    failed = [r for r in results if r[1] != 200]
    assert len(results) > 200, f"only {len(results)} requests in 13 s"
    assert len(failed) <= 0.01 * len(results), f"{len(failed)} of {len(results)} failed: {failed[:5]}"
    slowest = max(seconds for seconds, _ in results)
    assert slowest < 5, f"a request took {slowest:.1f}s around the replica's death"
    wait_for(lambda: running() == 2, 90, "a replacement replica")
    assert victim not in replica_stats(handle, 2)
    with httpx.Client(base_url=BASE, timeout=30) as client:
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/models/ner/tag", json={"text": TEXT}, headers=AUTH).status_code == 200


def test_overload_is_shed_with_retry_after_and_nothing_hangs(registry):
    deploy_one(registry, autoscaling={"min_replicas": 1, "max_replicas": 1}, max_batch_size=8, max_wait_s=0.05)
    wait_for(lambda: running() == 1, 60, "one replica")
    long_text = " ".join([TEXT] * 20)

    async def flood() -> list[httpx.Response | Exception]:
        async with httpx.AsyncClient(base_url=BASE, timeout=20, limits=httpx.Limits(max_connections=200)) as c:
            return await asyncio.gather(*(
                c.post("/v1/models/ner/tag", json={"texts": [long_text] * 8}, headers=AUTH) for _ in range(120)
            ), return_exceptions=True)

    responses = asyncio.run(flood())
    hung = [r for r in responses if isinstance(r, Exception)]
    assert not hung, f"{len(hung)} requests got no answer in 20 s: {hung[:2]}"
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 503}, codes
    refused = [r for r in responses if r.status_code == 503]
    assert refused and codes.count(200) > 0, codes
    assert all(r.headers.get("retry-after") == "1" for r in refused)
    with httpx.Client(base_url=BASE, timeout=30) as client:
        assert client.post("/v1/models/ner/tag", json={"text": TEXT}, headers=AUTH).status_code == 200
