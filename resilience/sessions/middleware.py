"""Record who is behind each authenticated session (IP, user agent, last seen)."""

from __future__ import annotations


class SessionActivityMiddleware:
    """Refresh the session's client metadata, at most once per SESSION_ACTIVITY_INTERVAL.

    Must sit after SessionMiddleware (so SessionMiddleware saves what this marks as
    modified) and after AuthenticationMiddleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        note = getattr(session, "note_activity", None)
        if note is not None:
            note(ip=request.META.get("REMOTE_ADDR", ""), user_agent=request.META.get("HTTP_USER_AGENT", ""))
        return response
