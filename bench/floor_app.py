"""Ray Serve's floor for the endpoint benchmark: a no-op FastAPI ingress, JSON in, fixed JSON out.

Same route and answer shape as raytag's tag endpoint, no model, no auth. Imported by
``serve_load.py`` (run as a script, so this module travels to the replicas by value).
"""

from fastapi import FastAPI, Request
from ray import serve

api = FastAPI()


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=128)
@serve.ingress(api)
class Floor:
    @api.post("/v1/models/{name}/tag")
    async def tag(self, name: str, request: Request) -> dict:
        body = await request.json()
        count = len(body.get("texts") or [body.get("text")])
        return {"model": name, "version": 1, "results": [{"entities": [], "tokens": None}] * count}
