"""Request hygiene shared by every view."""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse

from agentapi_admin.problems import problem_response

MESSAGE = "The query string contains a NUL character, which no parameter accepts; remove it and try again."


class RejectNulBytesMiddleware:
    """Answer 400 when the query string carries a NUL character.

    PostgreSQL refuses NUL in text, and Django's own admin list filters pass query
    values straight to the database, so `?status=%00` was a 500. Forms already refuse
    NUL with a field error (Django's ProhibitNullCharactersValidator) and paths with a
    NUL match no route, so only the query string needs this.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if _has_nul(request):
            if request.path.startswith("/api/"):
                return problem_response(400, "bad_request", MESSAGE, field="query")
            if "json" in request.headers.get("Accept", ""):
                return JsonResponse({"error": "bad_request", "detail": MESSAGE}, status=400)
            return HttpResponse(MESSAGE, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def _has_nul(request) -> bool:
    # On the raw string, so the service API's hot path parses nothing: a NUL can only
    # arrive as "%00" (or a raw byte), and "%2500" is a literal "%00", not a NUL.
    query = request.META.get("QUERY_STRING", "")
    return bool(query) and ("%00" in query or "\x00" in query)
