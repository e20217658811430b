"""Where config deploys go: Serve's REST API on Ray's dashboard (no Ray started here)."""

from __future__ import annotations

import types

import pytest
import ray

from raytag.serving.deploy import app_config, dashboard_address, deploy


def test_an_explicit_address_wins_then_the_environment(monkeypatch):
    monkeypatch.setenv("RAY_DASHBOARD_ADDRESS", "http://head:8265")
    assert dashboard_address("https://other:443") == "https://other:443"
    assert dashboard_address() == "http://head:8265"


def test_the_connected_rays_dashboard_is_used_otherwise(monkeypatch):
    monkeypatch.delenv("RAY_DASHBOARD_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(RuntimeError, match="not connected to Ray"):
        dashboard_address()
    calls = []

    def context(**kwargs):
        calls.append(kwargs)
        return types.SimpleNamespace(dashboard_url=url)

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "init", context)
    url = "127.0.0.1:8265"
    assert dashboard_address() == "http://127.0.0.1:8265"
    assert calls == [{"ignore_reinit_error": True}]  # the running session's context, never a new Ray
    url = ""
    with pytest.raises(RuntimeError, match="runs without its dashboard"):
        dashboard_address()


def test_an_unreachable_dashboard_is_one_clear_error(monkeypatch):
    config = app_config({"models": [{"name": "m", "ref": "m"}]})
    with pytest.raises(RuntimeError, match=r"through Ray's dashboard at http://127\.0\.0\.1:9 failed"):
        deploy(config, address="http://127.0.0.1:9", wait_s=1)


def test_an_invalid_config_fails_before_anything_is_sent():
    config = app_config({"models": [{"name": "m", "ref": "m"}]})
    config["proxy_location"] = "Nowhere"
    with pytest.raises(ValueError, match="proxy_location"):
        deploy(config, address="http://127.0.0.1:9")
