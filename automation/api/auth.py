"""Staff-token authentication: checked, permission-bound and rate limited on every request."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security.http import HttpAuthBase

from automation.api.http import Problem
from automation.models import StaffToken
from automation.scopes import SCOPES
from automation.selectors import staff_token_check, staff_token_touch
from resilience.ratelimit.enforce import ratelimit_enforce

CHALLENGE = 'Bearer realm="agentapi-admin"'


def _unauthorized(error: str, detail: str) -> Problem:
    challenge = f'{CHALLENGE}, error="invalid_token"' if error != "missing_token" else CHALLENGE
    return Problem(401, error, detail, headers={"WWW-Authenticate": challenge})


class StaffTokenAuth(HttpAuthBase):
    """Bearer staff token (`sat_<8 hex>_<secret>`) holding `scopes`, whose user holds `permissions` right now."""

    openapi_type = "http"
    openapi_scheme = "bearer"
    openapi_bearerFormat = "sat_<8 hex>_<43 characters>"

    def __init__(self, scopes: tuple[str, ...], permissions: tuple[str, ...]):
        granted = {perm for scope in scopes for perm in SCOPES[scope][1]}
        assert scopes and set(permissions) <= granted, (scopes, permissions)
        super().__init__()
        self.scopes, self.permissions = scopes, permissions

    def __call__(self, request: HttpRequest) -> StaffToken:
        header = request.headers.get("Authorization", "")
        if not header:
            self._refuse_per_ip(request)
            raise _unauthorized("missing_token", "Send a staff token as `Authorization: Bearer sat_...`.")
        scheme, _, secret = header.partition(" ")
        check = staff_token_check(secret.strip()) if scheme.lower() == "bearer" else None
        if check is None or check.token is None:
            self._refuse_per_ip(request)
            if check is None:
                raise _unauthorized("invalid_token", "Use the Bearer scheme: `Authorization: Bearer sat_...`.")
            raise _unauthorized(check.error, check.detail)
        token = check.token
        # Counted per token (its prefix is the identity), before any other refusal.
        request.api_key = token  # type: ignore[attr-defined]  # the request attribute the limiter reads
        denied = ratelimit_enforce(request, scopes=("user",))
        if denied is not None:
            raise Problem(denied.status_code, "rate_limited", "", response=denied)
        staff_token_touch(token)
        if not token.user.is_staff:
            raise Problem(403, "not_staff", "The token's user is no longer staff; its tokens no longer work.")
        _require(token, self.scopes, self.permissions)
        return token

    @staticmethod
    def _refuse_per_ip(request: HttpRequest) -> None:
        """Spend the client address's budget on a request without a usable token; raise when it is spent."""
        denied = ratelimit_enforce(request, scopes=("ip",))
        if denied is not None:
            raise Problem(denied.status_code, "rate_limited", "", response=denied)


def _require(token: StaffToken, scopes: tuple[str, ...], permissions: tuple[str, ...]) -> None:
    missing_scopes = [scope for scope in scopes if scope not in token.scopes]
    if missing_scopes:
        raise Problem(403, "insufficient_scope", f"This token lacks the scope {', '.join(missing_scopes)}.")
    missing = [perm for perm in permissions if not token.user.has_perm(perm)]
    if missing:
        raise Problem(
            403,
            "permission_denied",
            f"{token.user.get_username()} lacks the permission {', '.join(missing)}; "
            "a token never does more than its user may.",
        )


def require_scope(token: StaffToken, scope: str, *permissions: str) -> None:
    """Refuse (403) an authenticated token lacking `scope`, or whose user lacks `permissions` now.

    For what only the request body says it needs, beyond its operation's auth (a promotion of overrides).
    """
    assert set(permissions) <= set(SCOPES[scope][1]), (scope, permissions)
    _require(token, (scope,), permissions)


def staff(scope: str | tuple[str, ...], *permissions: str) -> StaffTokenAuth:
    """Return the auth of an operation needing `scope` (or every scope of a tuple) and `permissions`."""
    return StaffTokenAuth(scope if isinstance(scope, tuple) else (scope,), permissions)
