"""Liveness and readiness endpoints for load balancers and orchestrators."""
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from commerce.errors import PROBLEM_CONTENT_TYPE, problem_body
from commerce.health import check_cdc, check_dependencies


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Return 200 while the process runs, without touching any dependency."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Return 200 when PostgreSQL, Redis, Kafka and OpenSearch all respond, else 503 naming each one down."""
    services = check_dependencies()
    down = sorted(name for name, result in services.items() if result["status"] != "up")
    # Relay and consumer lag are reported for operators but never make the process unready.
    cdc = check_cdc() if "postgres" not in down else {"status": "unknown", "error": "postgres down"}
    if not down:
        return JsonResponse({"status": "ready", "services": services, "cdc": cdc})

    body = problem_body(
        status=503,
        code="dependencies_unavailable",
        detail=f"Not ready: {', '.join(down)} down.",
        instance=request.path,
        hint="Start the listed services (make stack-up) and retry.",
        extra={"down": down, "services": services, "cdc": cdc},
    )
    response = JsonResponse(body, status=503, content_type=PROBLEM_CONTENT_TYPE)
    response["Retry-After"] = "5"
    return response
