"""Sign in and out, change a password and reset a forgotten one: Django's auth views in the portal's pages.

The session key is rotated on login; a password change keeps the current session and
ends the others (Django's session auth hash); reset links go through the email backend.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.urls import reverse, reverse_lazy

from agentapi_admin import metrics
from resilience.throttle import form_throttle_hit, throttle_form, throttle_login, throttled_response


def throttle_every_post(group: str, *, username_field: str):
    """Count every POST per IP and per `username_field`, accepted or not: each accepted one sends an email."""

    def decorator(view):
        def wrapped(request, *args, **kwargs):
            if request.method == "POST" and settings.RESILIENCE_RATE_LIMIT_ENABLED:
                result = form_throttle_hit(request, group=group, username_field=username_field)
                if result.limited:
                    metrics.form_throttle_refusal(group, result)
                    return throttled_response(request, result)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class PortalLoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "password_reset": settings.PORTAL_PASSWORD_RESET}

    def get_default_redirect_url(self) -> str:
        return reverse("portal:index")


class PortalPasswordChangeView(auth_views.PasswordChangeView):
    template_name = "portal/password_change.html"
    success_url = reverse_lazy("portal:account")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "Your password was changed. Your other sessions were signed out.")
        return response


class ResetEnabledMixin:
    """Answer 404 when no email server is configured: a reset link could not be delivered."""

    def dispatch(self, request, *args, **kwargs):
        if not settings.PORTAL_PASSWORD_RESET:
            raise Http404("Password reset by email is not configured.")
        # A mixin: the view class it precedes provides dispatch().
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class PortalPasswordResetView(ResetEnabledMixin, auth_views.PasswordResetView):
    template_name = "portal/password_reset.html"
    email_template_name = "portal/password_reset_email.txt"
    subject_template_name = "portal/password_reset_subject.txt"
    success_url = reverse_lazy("portal:password_reset_done")


class PortalPasswordResetDoneView(ResetEnabledMixin, auth_views.PasswordResetDoneView):
    template_name = "portal/password_reset_done.html"

    def get_context_data(self, **kwargs):
        days = max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)
        return {**super().get_context_data(**kwargs), "timeout_days": days}


class PortalPasswordResetConfirmView(ResetEnabledMixin, auth_views.PasswordResetConfirmView):
    template_name = "portal/password_reset_confirm.html"
    success_url = reverse_lazy("portal:password_reset_complete")


class PortalPasswordResetCompleteView(ResetEnabledMixin, auth_views.PasswordResetCompleteView):
    template_name = "portal/password_reset_complete.html"


# Shares its per-IP and per-username counters with the admin sign-in.
login = throttle_login(PortalLoginView.as_view())
logout = auth_views.LogoutView.as_view(next_page="portal:login")
# Failed attempts count per IP and per account, as in the admin's password change; anonymous
# visitors are sent to sign in before the throttle counts anything.
password_change = login_required(throttle_form("password")(PortalPasswordChangeView.as_view()))
# Per IP and per address, so one client cannot flood a mailbox (Django answers every address alike).
password_reset = throttle_every_post("password-reset", username_field="email")(PortalPasswordResetView.as_view())
password_reset_done = PortalPasswordResetDoneView.as_view()
password_reset_confirm = PortalPasswordResetConfirmView.as_view()
password_reset_complete = PortalPasswordResetCompleteView.as_view()
