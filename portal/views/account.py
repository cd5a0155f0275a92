"""The user's own account: active sessions and "log out everywhere"."""

from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from portal.access import portal_page
from portal.views.layout import render_page
from resilience.sessions.selectors import sessions_for_user
from resilience.sessions.services import sessions_revoke_all


@portal_page
@require_http_methods(["GET", "HEAD", "POST"])
def account(request):
    """List the user's sessions (GET) or end all of them, this one included (POST)."""
    if request.method == "POST":
        count = sessions_revoke_all(user=request.user, actor=request.user)
        logout(request)
        messages.success(request, f"Logged out everywhere ({count} session{'s' if count != 1 else ''} ended).")
        return redirect("portal:login")
    sessions = sessions_for_user(request.user)
    return render_page(request, "portal/account.html", {"sessions": sessions, "current": request.session.session_key})
