"""Ray Serve deployment with FastAPI ingress: ``/rank`` ranks candidates for a user with the
registry's champion and request-time Feast features (logic in ``lr_recsys.serve``).

Routes: ``GET /healthz`` (alive), ``GET /readyz`` (503 until the model and the feature store are
loaded), ``POST /rank``, ``POST /admin/reload`` (pick up a newly promoted champion without a
restart), ``GET /stats`` (requests, fallbacks, cold starts, reloads); OpenAPI at ``/docs``.
Production: ``infra/kuberay/serve-rayservice.yaml`` imports ``serving.app:build_app``.

``/admin/*`` routes need ``Authorization: Bearer <token>``, the token read from the environment
variable ``ServeConfig.admin_token_env`` (``LR_RECSYS_ADMIN_TOKEN``) when the replica starts:
missing or wrong credential 401 (``WWW-Authenticate: Bearer``), variable unset or empty 403 (the
admin routes are off). Overload: at most ``max_ongoing_requests`` requests run in a replica and
``max_queued_requests`` wait; the rest get an immediate 503 with ``Retry-After`` (Ray Serve's
back-pressure, configured in ``build_app``).
"""

import hmac
import json
import logging
import os
import threading
import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from ray import serve
from ray.serve.config import BackpressureConfig, RequestRouterConfig

from lr_recsys.serve.api import RankRequest, RankResponse, Ready, ReloadResult
from lr_recsys.serve.ranker import Ranker, ServeConfig, UnknownItems

log = logging.getLogger(__name__)
app = FastAPI(title="lr-recsys ranking", version="1", description=__doc__)
admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="adminToken",
    description="the value of the environment variable named by ServeConfig.admin_token_env",
)  # fmt: skip
AdminCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)]


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: an error that echoes the client's input still
    encodes when that input holds a lone UTF-16 surrogate (valid JSON, not encodable as UTF-8)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, ensure_ascii=True, allow_nan=False, separators=(",", ":")
        ).encode()


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError) -> Response:
    """FastAPI's 422 (same body), rendered so that echoed input cannot turn it into a 500."""
    return AsciiJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


@serve.deployment(name="lr-recsys-ranker", ray_actor_options={"num_cpus": 0.5})
@serve.ingress(app)
class RankingService:
    """Opens the feature store and loads the champion once (in the background, so liveness
    answers at once and readiness reports the load), then ranks."""

    def __init__(self, config: dict[str, Any]) -> None:
        import torch
        from ray.serve import metrics

        torch.set_num_threads(1)  # one small forward pass per request: threads only contend
        self.cfg = ServeConfig.model_validate(config)
        self.ranker: Ranker | None = None
        self.error: str | None = None
        token = os.environ.get(self.cfg.admin_token_env, "")
        self._admin_token = token.encode("utf-8", "surrogateescape") if token else None
        self._metrics = {
            name: metrics.Counter(f"lr_recsys_{name}", description=text)
            for name, text in [("requests", "rank requests answered"),
                               ("fallbacks", "candidates scored without a precomputed explanation"),
                               ("cold_starts", "requests for unknown users")]
        }  # fmt: skip
        threading.Thread(target=self._load, name="load-champion", daemon=True).start()

    def _load(self) -> None:
        try:
            ranker = Ranker(self.cfg)
            ranker.load()
            self.ranker = ranker
            log.info("serving %s v%s", ranker.current.name, ranker.current.version)
        except Exception as exc:  # noqa: BLE001 - reported by /readyz, not a crash loop
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("loading the champion failed")
            return
        while self.cfg.poll_s > 0:
            time.sleep(self.cfg.poll_s)
            try:
                ranker.reload_if_changed()
            except Exception:  # noqa: BLE001 - keep serving the current model
                log.exception("reload check failed")

    def _ready(self) -> Ranker:
        if self.ranker is None:
            raise HTTPException(503, detail=self.error or "loading the model and feature store")
        return self.ranker

    @app.get("/healthz")
    def healthz(self) -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", response_model=Ready)
    def readyz(self) -> Any:
        if self.ranker is None:
            reason = self.error or "loading the model and feature store"
            return JSONResponse(Ready(ready=False, reason=reason).model_dump(), status_code=503)
        return Ready(ready=True, model_version=self.ranker.current.version)

    @app.post("/rank", response_model=RankResponse)
    async def rank(self, request: RankRequest) -> Response:
        # a few ms of CPU work run on the event loop: concurrent requests queue here instead of
        # contending for the GIL in a thread pool; the online store is only used from this loop
        ranker = self._ready()
        try:
            out = ranker.rank(
                request.user_id, request.candidate_item_ids, request.k, request.explain
            )
        except UnknownItems as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        self._metrics["requests"].inc()
        if out.fallbacks:
            self._metrics["fallbacks"].inc(out.fallbacks)
        if out.cold_start:
            self._metrics["cold_starts"].inc()
        # already a validated RankResponse: serialise once instead of FastAPI re-validating it
        return Response(out.model_dump_json(), media_type="application/json")

    def _authorize_admin(self, credentials: HTTPAuthorizationCredentials | None) -> None:
        """Constant-time check of the bearer token; 403 while no token is configured."""
        if self._admin_token is None:
            raise HTTPException(
                403, detail=f"admin routes are off: set the environment variable "
                f"{self.cfg.admin_token_env} to a token on the serving replicas to enable them",
            )  # fmt: skip
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None:
            raise HTTPException(
                401, detail="admin routes need the header 'Authorization: Bearer <token>'",
                headers=challenge,
            )  # fmt: skip
        given = credentials.credentials.encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self._admin_token):
            raise HTTPException(401, detail="wrong admin bearer token", headers=challenge)

    @app.post("/admin/reload", response_model=ReloadResult,
              responses={401: {"description": "missing or wrong bearer token"},
                         403: {"description": "admin routes are off (no token configured)"}})  # fmt: skip
    def reload(self, credentials: AdminCredentials) -> ReloadResult:
        self._authorize_admin(credentials)
        ranker = self._ready()
        try:
            version, changed = ranker.reload_if_changed()
        except LookupError as exc:
            raise HTTPException(409, detail=str(exc)) from exc
        return ReloadResult(model_version=version, changed=changed)

    @app.get("/stats")
    def stats(self) -> dict[str, Any]:
        ranker = self._ready()
        return {"model_version": ranker.current.version, **ranker.stats}


# A request queued at the proxy while every replica is at max_ongoing_requests retries with
# exponential backoff; Ray's default (25 ms doubling to 500 ms) leaves a replica that ranks in
# ~20 ms idle between requests. Short retries keep it busy (benchmarks/serve_load.py).
ROUTER = RequestRouterConfig(initial_backoff_s=0.002, backoff_multiplier=2, max_backoff_s=0.02)


def build_app(args: dict[str, Any]) -> serve.Application:
    """Ray Serve application builder (``serve run serving.app:build_app``, KubeRay serveConfigV2):
    ``args`` are ``ServeConfig`` fields, validated here so a bad config fails at deploy time."""
    cfg = ServeConfig.model_validate(args or {})
    return RankingService.options(
        max_ongoing_requests=cfg.max_ongoing_requests,
        max_queued_requests=cfg.max_queued_requests,
        backpressure_config=BackpressureConfig(status_code=503, retry_after_s=cfg.retry_after_s),
        request_router_config=ROUTER,
    ).bind(cfg.model_dump(mode="json"))
