"""Log in and out of the portal with Django's auth (the session key is rotated on login)."""

from django.contrib.auth import views as auth_views
from django.urls import reverse

from resilience.throttle import throttle_login


class PortalLoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return reverse("portal:index")


# Shares its per-IP and per-username counters with the admin sign-in.
login = throttle_login(PortalLoginView.as_view())
logout = auth_views.LogoutView.as_view(next_page="portal:login")
