"""The FastAPI app: routes, lifespan, error handlers."""

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Dict, Optional, Union

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.responses import Response

from .errors import ServeError, http_error
from .guard import RequestGuard
from .schema import EntitiesRequest, EntitiesResponse, ErrorResponse, header_id, parse_body
from .service import Service
from .settings import ENTITIES_PATH, ServeSettings


def create_app(model: Union[str, Path], settings: Optional[ServeSettings] = None) -> FastAPI:
    """The ASGI app serving `model`; the pipeline is loaded by the app's lifespan, in the background.

    model (Union[str, Path]): pipeline directory or package name.
    settings (Optional[ServeSettings]): batching, limits and engine (default: `ServeSettings()`).
    RETURNS (FastAPI): the app; its `state.service` holds the pipeline and the metrics.
    """
    settings = settings or ServeSettings()
    service = Service(model, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loading = asyncio.create_task(service.start())
        try:
            yield
        finally:
            if not loading.done():  # stopped while loading: the load runs on in its thread, not waited for
                loading.cancel()
                await asyncio.gather(loading, return_exceptions=True)
            await service.stop()

    app = FastAPI(
        title="spacy-wnut",
        summary="Named entities of texts, tagged by a spacy-wnut pipeline with dynamic batching.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(ServeError, lambda request, exc: exc.response())
    refusals = {status: {"model": ErrorResponse} for status in (400, 413, 422, 500, 503)}

    body_schema = {"content": {"application/json": {"schema": EntitiesRequest.model_json_schema()}}, "required": True}

    @app.post(
        ENTITIES_PATH, response_model=EntitiesResponse, responses=refusals, openapi_extra={"requestBody": body_schema}
    )
    async def entities(request: Request) -> JSONResponse:
        """Entities of one text or several, with character offsets, label, text and score."""
        answer = await service.entities(parse_body(await request.body()))
        return JSONResponse(answer, headers={"X-Request-ID": header_id(answer["id"])})

    @app.get("/health")
    async def health() -> Dict[str, str]:
        """Live: the server answers (the pipeline may still be loading)."""
        return {"status": "ok"}

    @app.get("/ready", responses={503: {"model": ErrorResponse}})
    async def ready() -> Dict[str, Any]:
        """Ready: the pipeline is loaded and takes requests (503 before)."""
        if not service.ready:
            message = f"the pipeline failed to load: {service.load_error}" if service.load_error else "loading"
            raise ServeError(503, "not_ready", message, headers={"Retry-After": str(settings.retry_after)})
        return {"status": "ready", "pipeline": service.nlp.pipe_names, **settings.batch_limits}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(
        RequestGuard,
        path=ENTITIES_PATH,
        limit=settings.max_body_bytes,
        read_timeout=settings.read_timeout,
        metrics=service.metrics,
    )
    return app
