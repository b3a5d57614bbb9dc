"""GET /metrics: Prometheus text format."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hearth.adapter.metrics import CONTENT_TYPE

router = APIRouter()


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    metrics = request.app.state.metrics
    await metrics.refresh_from_engine(request.app.state.engine, request.app.state.settings.health_timeout)
    return Response(metrics.render(), media_type=CONTENT_TYPE)
