"""`/healthz` and `/readyz` for load balancers and orchestrators.

* `/healthz` — the process is up and serving requests (liveness: restart it when this fails).
* `/readyz` — it can do useful work: the database and Redis answer (readiness: send it traffic
  only when this answers 200; 503 otherwise). The body says which check failed, and which
  enabled instruments an engine has taken on ("ok") or not yet ("starting": not a reason to take
  a web process out of service).

A middleware, first in the chain, answers them: probes come from inside the deployment by
address and over plain http, so they must not depend on `ALLOWED_HOSTS` or the https redirect,
and they should not cost a session or a URL resolution.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse

from exchange.operations import readiness

_METHODS = frozenset({"GET", "HEAD"})


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path in ("/healthz", "/readyz") and request.method in _METHODS:
            if path == "/healthz":
                return _no_store(JsonResponse({"status": "ok"}))
            report = readiness()
            return _no_store(JsonResponse(report, status=200 if report["ready"] else 503))
        return self.get_response(request)
