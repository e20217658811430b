"""The HTTP API on a real local Ray Serve, over 127.0.0.1: both model kinds, limits, auth,
batching, backpressure and a live version switch."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import publish_bilstm, publish_transformer
from tests.http_cases import ACCEPTED, ERRORS, PROTOCOL

PORT = 18431
BASE = f"http://127.0.0.1:{PORT}"
KEY = "test-key-7f3a"
AUTH = {"Authorization": f"Bearer {KEY}"}
EXAMPLE = "My name is Wolfgang and I live in Berkeley, California."


def _args(registry, keys_file, bilstm_ref="bilstm", **overrides):
    one = {"min_replicas": 1, "max_replicas": 1}
    models = [
        # Two replicas: the version switch below must reach both.
        {"name": "bilstm", "ref": bilstm_ref, "max_batch_size": 16, "batch_wait_timeout_s": 0.05, "num_cpus": 0.25,
         "max_ongoing_requests": 32, "max_queued_requests": 64},
        {"name": "transformer", "ref": "transformer", "max_batch_size": 8, "batch_wait_timeout_s": 0.02,
         "num_cpus": 0.25, "autoscaling": one},
        {"name": "tight", "ref": "bilstm", "num_cpus": 0.25, "max_ongoing_requests": 1, "max_queued_requests": 1,
         "max_batch_size": 1, "autoscaling": one},
    ]
    return {"registry_root": str(registry), "api_keys_file": str(keys_file), "max_text_chars": 5000,
            "max_batch_items": 8, "models": models, **overrides}


@pytest.fixture(scope="module")
def server(ray_local, tmp_path_factory):
    from ray import serve

    from raytag.serving.deploy import app_config, deploy

    tmp = tmp_path_factory.mktemp("serve")
    registry = tmp / "registry"
    publish_bilstm(registry, "bilstm", seed=1)
    publish_transformer(registry, "transformer", tmp, max_length=16)
    keys_file = tmp / "keys"
    keys_file.write_text(f"# one key per line\n{KEY}\n")
    deploy(app_config(_args(registry, keys_file), port=PORT))
    with httpx.Client(base_url=BASE, timeout=30) as client:
        deadline = time.monotonic() + 120
        while client.get("/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("serve never became ready")
            time.sleep(0.5)
        yield {"client": client, "registry": registry, "keys_file": keys_file}
    serve.shutdown()


def test_health_is_open_and_everything_else_needs_the_key(server):
    client = server["client"]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    r = client.get("/v1/models"); assert r.status_code == 401, r.text
    assert client.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/models", headers={"Authorization": KEY}).status_code == 401  # no scheme
    response = client.post("/v1/models/bilstm/tag", json={"text": EXAMPLE})
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", response.text
    listing = client.get("/v1/models", headers=AUTH).json()["models"]
    by_name = {m["name"]: m for m in listing}
    assert by_name["bilstm"]["kind"] == "bilstm" and by_name["transformer"]["kind"] == "transformer"
    assert by_name["bilstm"]["version"] == 1 and "latest" in by_name["bilstm"]["aliases"]
    assert by_name["transformer"]["labels"][0] == "O" and by_name["bilstm"]["metrics"]["test_f1"] == 0.5
    # The API documentation is private by default: behind the key like everything else.
    assert client.get("/openapi.json").status_code == 401 and client.get("/docs").status_code == 401
    schema = client.get("/openapi.json", headers=AUTH).json()
    tag = schema["paths"]["/v1/models/{name}/tag"]["post"]
    assert {"400", "413", "422", "503"} <= set(tag["responses"])
    body = tag["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"][0] == {"required": ["text"]} and body["additionalProperties"] is False
    assert client.get("/docs", headers=AUTH).status_code == 200
    # Swagger UI's Authorize button fills in the declared bearer scheme.
    bearer = schema["components"]["securitySchemes"]["bearer"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    assert tag["security"] == [{"bearer": []}]


@pytest.mark.parametrize("model", ["bilstm", "transformer"])
def test_tag_text_texts_and_tokens(server, model):
    client = server["client"]
    one = client.post(f"/v1/models/{model}/tag", json={"text": EXAMPLE, "return_tokens": True}, headers=AUTH)
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model"] == model and body["version"] == 1 and len(body["results"]) == 1
    result = body["results"][0]
    assert [t["text"] for t in result["tokens"]][:4] == ["My", "name", "is", "Wolfgang"]
    for token in result["tokens"]:
        assert EXAMPLE[token["start"] : token["end"]] == token["text"]
    for entity in result["entities"]:
        assert set(entity) == {"entity_group", "score", "word", "start", "end"}
        assert EXAMPLE[entity["start"] : entity["end"]] == entity["word"]

    many = client.post(f"/v1/models/{model}/tag", json={"texts": [EXAMPLE, "", "Berkeley"]}, headers=AUTH).json()
    assert len(many["results"]) == 3 and many["results"][1] == {"entities": [], "tokens": None}
    # Batching does not change answers (scores may differ in the last float32 bits with padding).
    def spans(res):
        return [(e["entity_group"], e["word"], e["start"], e["end"], round(e["score"], 4)) for e in res["entities"]]

    assert spans(many["results"][0]) == spans(result)

    tokens = client.post(f"/v1/models/{model}/tag", json={"tokens": [["I", "live", "in", "Berkeley"]],
                                                          "return_tokens": True}, headers=AUTH).json()
    assert [t["start"] for t in tokens["results"][0]["tokens"]] == [0, 2, 7, 10]


def test_text_longer_than_the_window_is_tagged_completely(server):
    text = " ".join(["I live in Berkeley ."] * 60)  # 300 words; the window is 16 subwords
    body = server["client"].post("/v1/models/transformer/tag", json={"text": text, "return_tokens": True},
                                 headers=AUTH).json()
    assert len(body["results"][0]["tokens"]) == 300


@pytest.mark.parametrize(("body", "status", "fragment"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_bad_input_gets_a_clear_status(server, body, status, fragment):
    client = server["client"]
    if isinstance(body, bytes):
        response = client.post("/v1/models/bilstm/tag", content=body,
                               headers={**AUTH, "Content-Type": "application/json"})
    else:
        response = client.post("/v1/models/bilstm/tag", json=body, headers=AUTH)
    assert response.status_code == status, response.text[:500]
    detail = response.json()["detail"]  # always a JSON answer that says what is wrong
    assert fragment in json.dumps(detail).lower(), detail


@pytest.mark.parametrize(("body", "results"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_odd_but_valid_input_is_tagged(server, body, results):
    client = server["client"]
    if isinstance(body, bytes):
        response = client.post("/v1/models/bilstm/tag", content=body,
                               headers={**AUTH, "Content-Type": "application/json"})
        body = json.loads(body)
    else:
        response = client.post("/v1/models/bilstm/tag", json=body, headers=AUTH)
    assert response.status_code == 200, response.text[:500]
    answer = response.json()["results"]
    assert len(answer) == results
    texts = [body["text"]] if "text" in body else body["texts"] if "texts" in body else [
        " ".join(t) for t in body["tokens"]]
    for text, result in zip(texts, answer, strict=True):
        for span in result["entities"] + (result["tokens"] or []):
            assert text[span["start"] : span["end"]] == span.get("word", span.get("text"))


@pytest.mark.parametrize(("method", "path", "headers", "body", "status"), [c[1:] for c in PROTOCOL],
                         ids=[c[0] for c in PROTOCOL])
def test_wrong_method_path_or_credentials(server, method, path, headers, body, status):
    if headers is None:
        headers = {**AUTH, "Content-Type": "application/json"}
    headers = {k: v.format(key=KEY) for k, v in headers.items()}
    response = server["client"].request(method, path.format(key=KEY), content=body.encode(), headers=headers)
    assert response.status_code == status, response.text[:300]


def test_fuzzed_requests_never_get_a_server_error(server):
    """Schemathesis over the served OpenAPI document: valid and invalid bodies, fixed seed."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_schema_conformance,
        status_code_conformance,
    )

    document = server["client"].get("/openapi.json", headers=AUTH).json()
    schema = schemathesis.openapi.from_dict(document)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    tried = 0
    authorized: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            extra = [negative_data_rejection] if mode is GenerationMode.NEGATIVE else []

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=40, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck))
            def check(case) -> None:
                nonlocal tried
                tried += 1
                # A negative case may leave out the required Authorization header: it goes
                # without (401), as generated; restoring the key would make it a valid request.
                sent = {name.lower() for name in case.headers or {}}
                response = case.call(base_url=BASE, headers=AUTH if "authorization" in sent else {}, timeout=30)
                if mode is GenerationMode.POSITIVE and response.status_code != 401:
                    authorized.append(case.operation.label)
                case.validate_response(response, checks=checks + extra)

            try:
                check()
            except Unsatisfiable:
                # An operation without inputs (e.g. GET /healthz) has no invalid form to generate.
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert tried >= 100, f"only {tried} fuzzed requests were generated"
    # Valid requests carry the key, so the fuzzing reaches past the credentials check.
    assert len(authorized) >= 40 and any("/tag" in label for label in authorized), authorized[:5]


# The text #marked shows (marks read as their words only), and each mark's (words, label, score).
MARKED_JS = """(root) => [
    Array.from(root.childNodes).map(n => n.nodeType === Node.TEXT_NODE ? n.textContent
                                         : n.querySelector('.entity-text').textContent).join(''),
    Array.from(root.querySelectorAll('mark')).map(m => [
        m.querySelector('.entity-text').textContent, m.querySelector('.entity-label').textContent,
        Number(m.querySelector('.entity-score').textContent)])]"""


def _offline(page) -> list[str]:
    """Refuse, and list, every request the page makes to another server than the one under test."""
    elsewhere: list[str] = []

    def only_here(request_route) -> None:
        if request_route.request.url.startswith(BASE + "/"):
            request_route.continue_()
        else:
            elsewhere.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", only_here)
    return elsewhere


def test_try_page_highlights_what_the_api_answers(server, tmp_path):
    """A person's path through the page at / in headless Chromium: a wrong key, the right one,
    a model from the listing, typed text, the entities marked inline with label and score."""
    from tests.browser import headless_chromium, page_errors

    client = server["client"]
    # The offsets count code points: an emoji before the entities catches UTF-16 slicing.
    texts = [EXAMPLE, "😀 " + EXAMPLE.replace("My name", "Your name")]
    expected = [client.post("/v1/models/bilstm/tag", json={"text": text}, headers=AUTH).json()["results"][0]["entities"]
                for text in texts]
    assert all(expected), "the tiny model found no entity: the page would have nothing to show"
    listed = [m["name"] for m in client.get("/v1/models", headers=AUTH).json()["models"]]
    with headless_chromium() as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 760})
        errors, elsewhere = page_errors(page), _offline(page)
        page.goto(f"{BASE}/")
        page.fill("#key", "not-the-key")
        page.click("#connect")
        page.wait_for_selector("#status:not([hidden])")
        assert "API key rejected" in page.text_content("#status") and page.is_disabled("#model")

        page.fill("#key", KEY)
        page.click("#connect")
        page.wait_for_selector("#model option[value='bilstm']", state="attached")
        assert page.is_hidden("#status")
        assert page.eval_on_selector_all("#model option", "os => os.map(o => o.value)") == listed
        page.select_option("#model", "bilstm")
        for i, (text, entities) in enumerate(zip(texts, expected, strict=True)):
            page.fill("#text", "")
            page.locator("#text").press_sequentially(text)
            if i == 0:
                page.click("#tag")
            else:
                page.locator("#text").press("Control+Enter")
            page.wait_for_function(f"(text) => ({MARKED_JS})(document.getElementById('marked'))[0] === text", arg=text)
            shown, marks = page.eval_on_selector("#marked", MARKED_JS)
            assert shown == text, "the marked text differs from the input"
            assert [(w, label) for w, label, _ in marks] == [(e["word"], e["entity_group"]) for e in entities]
            assert all(abs(score - e["score"]) <= 0.005 for (_, _, score), e in zip(marks, entities, strict=True))
            rows = page.eval_on_selector_all("#entities tbody tr", "rs => rs.map(r => r.cells[1].textContent)")
            assert rows == [e["word"] for e in entities]
            if i == 0:
                assert "bilstm v1" in page.text_content("#timing")
                shot = tmp_path / "try-page.png"
                page.screenshot(path=str(shot), full_page=True)
                # PNG signature, then a non-empty image (width and height from the IHDR chunk).
                data = shot.read_bytes()
                assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") == 1000
                if os.environ.get("RAYTAG_SCREENSHOTS"):
                    shutil.copy(shot, Path(os.environ["RAYTAG_SCREENSHOTS"]) / shot.name)
        assert not errors and not elsewhere, (errors, elsewhere)


def test_docs_render_offline_with_the_authorize_button(server):
    """Swagger UI from the installed package, in a browser on a machine without internet
    (the tests run in a loopback-only network namespace): the key rides on every request."""
    from tests.browser import headless_chromium, page_errors

    with headless_chromium() as browser:
        page = browser.new_page(extra_http_headers=AUTH)
        errors, elsewhere = page_errors(page), _offline(page)
        page.goto(f"{BASE}/docs")
        page.wait_for_selector(".swagger-ui .opblock-summary-path")
        paths = page.eval_on_selector_all(".opblock-summary-path", "ps => ps.map(p => p.textContent.trim())")
        assert "/v1/models/{name}/tag" in paths and "/v1/models" in paths
        assert page.is_visible(".swagger-ui button.authorize")
        assert not errors and not elsewhere, (errors, elsewhere)


def test_unknown_model_is_404(server):
    response = server["client"].post("/v1/models/nope/tag", json={"text": "x"}, headers=AUTH)
    assert response.status_code == 404 and "nope" in response.json()["detail"]


def replica_stats(handle, replicas: int) -> dict[int, dict]:
    """Each replica's stats, by process id (the router picks the replica, so ask until all answered)."""
    seen: dict[int, dict] = {}
    deadline = time.monotonic() + 30
    while len(seen) < replicas:
        assert time.monotonic() < deadline, f"only {len(seen)} of {replicas} replicas answered"
        stats = handle.stats.remote().result()
        seen[stats["pid"]] = stats
    return seen


def batch_totals(stats: dict[int, dict]) -> dict[int, int]:
    totals: dict[int, int] = {}
    for replica in stats.values():
        for size, count in replica["batch_sizes"].items():
            totals[int(size)] = totals.get(int(size), 0) + count
    return totals


def test_concurrent_requests_are_batched(server):
    from ray import serve

    handle = serve.get_deployment_handle("tagger-bilstm", app_name="raytag")
    before = batch_totals(replica_stats(handle, 2))

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=BASE, timeout=30) as client:
            responses = await asyncio.gather(*(
                client.post("/v1/models/bilstm/tag", json={"text": f"{EXAMPLE} {i}"}, headers=AUTH)
                for i in range(24)
            ))
        return [r.status_code for r in responses]

    assert asyncio.run(burst()) == [200] * 24
    after = batch_totals(replica_stats(handle, 2))
    new = {size: count - before.get(size, 0) for size, count in after.items() if count > before.get(size, 0)}
    assert sum(size * count for size, count in new.items()) == 24
    assert max(new) > 1, f"no batch held more than one request: {new}"


def test_overload_returns_503_with_retry_after_and_never_hangs(server):
    async def flood() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=BASE, timeout=60) as client:
            return await asyncio.gather(*(
                client.post("/v1/models/tight/tag", json={"texts": [EXAMPLE] * 8}, headers=AUTH)
                for _ in range(30)
            ))

    responses = asyncio.run(flood())
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 503}, codes
    rejected = [r for r in responses if r.status_code == 503]
    assert rejected, "30 concurrent 8-text requests never exceeded one in flight + one queued"
    assert all(r.headers.get("retry-after") == "1" for r in rejected)
    # The deployment is still healthy once the queue has drained.
    deadline = time.monotonic() + 30
    while server["client"].post("/v1/models/tight/tag", json={"text": EXAMPLE}, headers=AUTH).status_code != 200:
        assert time.monotonic() < deadline, "the overloaded deployment never recovered"
        time.sleep(0.2)


def scrape_raytag_samples() -> list:
    """The raytag samples on every node's Prometheus endpoint (Ray's metrics agent)."""
    import ray
    from prometheus_client.parser import text_string_to_metric_families

    samples = []
    for node in ray.nodes():
        if node["Alive"]:
            text = httpx.get(f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics", timeout=10).text
            samples += [s for family in text_string_to_metric_families(text) for s in family.samples
                        if s.name.startswith("ray_raytag_")]
    return samples


def test_per_model_metrics_reach_rays_prometheus_endpoint(server):
    client = server["client"]
    for name in ("bilstm", "tight"):
        assert client.post(f"/v1/models/{name}/tag", json={"texts": [EXAMPLE, "Paris"]}, headers=AUTH).status_code == 200
    wanted = {"ray_raytag_texts_total", "ray_raytag_request_latency_s_bucket", "ray_raytag_batch_size_bucket",
              "ray_raytag_model_version"}
    # Replicas push their metrics every few seconds and a scrape can catch a push half-way, so wait
    # for every metric of both models rather than for the first one.
    deadline = time.monotonic() + 60
    while True:
        samples = scrape_raytag_samples()
        ok = {s.labels["model"]: s.value for s in samples
              if s.name == "ray_raytag_requests_total" and s.labels.get("outcome") == "ok"}
        names = {s.name for s in samples if s.labels.get("model") == "bilstm"}
        versions = {s.labels["model"] for s in samples if s.name == "ray_raytag_model_version"}
        if ({"bilstm", "tight"} <= set(ok) and wanted <= names and {"bilstm", "tight"} <= versions) \
                or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert ok.get("bilstm", 0) >= 1 and ok.get("tight", 0) >= 1, f"requests by model: {ok}"
    assert wanted <= names
    # Serve's own tags come with every sample, the served name (not the registry ref) as the model.
    version = [s for s in samples if s.name == "ray_raytag_model_version" and s.labels["model"] == "tight"]
    assert version and all(s.value == 1 and s.labels["deployment"] == "tagger-tight" for s in version)


def test_version_switch_under_load_drops_nothing(server):
    from raytag.serving.deploy import app_config, deploy

    client = server["client"]
    publish_bilstm(server["registry"], "bilstm", seed=2)  # v2
    # (time the request started, status, version answered)
    results: list[tuple[float, int, int | None]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=BASE, timeout=60) as c:
            while not stop.is_set():
                started = time.monotonic()
                r = c.post("/v1/models/bilstm/tag", json={"text": EXAMPLE}, headers=AUTH)
                results.append((started, r.status_code, r.json().get("version") if r.status_code == 200 else None))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        # What `serve deploy` does with an edited config file: only a user_config changes.
        config = app_config(_args(server["registry"], server["keys_file"]), port=PORT)
        config["applications"][0]["deployments"] = [{"name": "tagger-bilstm", "user_config": {"ref": "bilstm@v2"}}]
        deploy(config)
        switched = time.monotonic()  # every replica has reloaded once the app is RUNNING again
        time.sleep(2.0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    failed = [r for r in results if r[1] != 200]
    assert not failed, f"failed requests during the switch: {failed[:5]}"
    assert results[0][2] == 1, "the first answers come from v1"
    after = [version for started, _, version in results if started > switched]
    assert len(after) >= 3 and set(after) == {2}, f"requests sent after the switch answered {after}"
    listing = client.get("/v1/models", headers=AUTH).json()["models"]
    assert next(m for m in listing if m["name"] == "bilstm")["version"] == 2
