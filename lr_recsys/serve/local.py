"""Start and stop a local Ray Serve application on loopback (the CLI, tests and benchmarks).

Ray 2.60 turns on token auth and writes ``~/.ray/auth_token``; local runs disable it and keep
Ray's files in their own temp directory. Always ``stop()``: it shuts Serve, then Ray, down.
Serve replicas inherit the environment of the process that starts Ray (the first ``start``): set
``LR_RECSYS_ADMIN_TOKEN`` (``ServeConfig.admin_token_env``) before it to enable ``/admin/*``.
"""

from __future__ import annotations

import os
import tempfile
import time

import httpx


def start(app, host: str = "127.0.0.1", port: int = 8000, num_cpus: int | None = None,
          name: str = "lr-recsys", route_prefix: str = "/", ready_path: str | None = "/readyz",
          timeout_s: float = 180.0) -> str:  # fmt: skip
    """Run ``app`` (a bound Serve application) at ``http://host:port{route_prefix}``; wait until
    ``ready_path`` answers 200 and return the base URL.

    Raises:
        RuntimeError: the app reported a load error or was not ready within ``timeout_s``.
    """
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray import serve

    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                 _temp_dir=tempfile.mkdtemp(prefix="ray-"), log_to_driver=False)  # fmt: skip
    serve.start(http_options={"host": host, "port": port})
    serve.run(app, name=name, route_prefix=route_prefix)
    url = f"http://{host}:{port}{route_prefix.rstrip('/')}"
    if ready_path:
        wait_ready(url + ready_path, timeout_s)
    return url


def wait_ready(url: str, timeout_s: float) -> None:
    """Poll ``url`` until it answers 200; a 503 whose reason is a load error fails at once."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=5)
            if r.status_code == 200:
                return
            last = r.text
            reason = r.json().get("reason") or ""
            if reason and not reason.startswith("loading"):
                raise RuntimeError(f"the service failed to load: {reason}")
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f} s: {last}")


def stop() -> None:
    """Shut Serve and Ray down (only what this process started)."""
    import ray
    from ray import serve

    if ray.is_initialized():
        serve.shutdown()
        ray.shutdown()
