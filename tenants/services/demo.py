"""Demo data for `make run` and `seed_demo`: users, plan, tenants, flags and keys; safe to run again and again."""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from tenants.models import ApiKey, Flag, Membership, Plan, Tenant
from tenants.services.apikeys import KEY_PREFIX, apikey_hash, apikey_issue_known_secret
from tenants.services.flags import flag_create
from tenants.services.memberships import membership_add, membership_change_role
from tenants.services.plans import plan_create
from tenants.services.tenants import tenant_create

DEMO_USERS = {
    "admin": {"role": "superuser", "is_staff": True, "is_superuser": True},
    "acme-owner": {"role": "owner of acme", "is_staff": False, "is_superuser": False},
    "globex-owner": {"role": "owner of globex", "is_staff": False, "is_superuser": False},
}
DEMO_PLAN = "standard"
DEMO_TENANTS = {
    "acme": {"name": "Acme Corporation", "owner": "acme-owner", "settings": {"agent_type": "claude"}},
    "globex": {
        "name": "Globex",
        "owner": "globex-owner",
        "settings": {"agent_type": "goose", "max_concurrent_agents": 2},
    },
}
DEMO_FLAGS = [
    # key, description, default, tenant_editable, risky
    ("agent_autostart", "Start an agent session as soon as a replica boots.", True, False, False),
    ("dark_mode", "Dark theme in the AgentAPI chat UI.", False, True, False),
    ("streaming_responses", "Stream agent output as server-sent events.", True, True, False),
    ("auto_approve_tools", "Let agents run tools without asking: risky, they act unsupervised.", False, True, True),
    ("new_billing", "Usage-based billing pipeline (platform controlled).", False, False, False),
]
DEMO_KEY_NAME = "demo replica"
# Each run tries the demo key of generation 0, 1, … and keeps the first that still works.
MAX_KEY_GENERATIONS = 100


def demo_key_secret(slug: str, generation: int) -> str:
    """Return the demo API key of a tenant, derived from SECRET_KEY so a later run can print it again."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"demo-api-key:{slug}:{generation}".encode(), hashlib.sha256)
    prefix = hmac.new(digest.digest(), b"prefix", hashlib.sha256).hexdigest()[:8]
    body = base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")
    return f"{KEY_PREFIX}_{prefix}_{body}"


def _users() -> dict:
    User = get_user_model()
    users = {}
    for username, spec in DEMO_USERS.items():
        user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        changed = [field for field in ("is_staff", "is_superuser") if getattr(user, field) != spec[field]]
        for field in changed:
            setattr(user, field, spec[field])
        # Re-hashing an unchanged password would change the session auth hash and sign the user out.
        if not user.check_password(settings.DEMO_PASSWORD):
            user.set_password(settings.DEMO_PASSWORD)
            changed.append("password")
        if changed:
            user.save(update_fields=changed)
        users[username] = {"role": spec["role"], "password": settings.DEMO_PASSWORD}
    return users


def _flags() -> None:
    for key, description, default, editable, risky in DEMO_FLAGS:
        if not Flag.objects.filter(key=key).exists():
            flag_create(
                key=key, description=description, default=default, tenant_editable=editable, risky=risky, actor=None
            )


def _tenant(slug: str, spec: dict, plan: Plan) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        tenant = tenant_create(slug=slug, name=spec["name"], plan=plan, settings=spec["settings"], actor=None)
    owner = get_user_model().objects.get(username=spec["owner"])
    membership = Membership.objects.filter(tenant=tenant, user=owner).first()
    if membership is None:
        membership_add(tenant=tenant, user=owner, role=Membership.Role.OWNER, actor=None)
    elif membership.role != Membership.Role.OWNER:
        membership_change_role(membership=membership, role=Membership.Role.OWNER, actor=None)
    return tenant


def _api_key(tenant: Tenant) -> str:
    now = timezone.now()
    for generation in range(MAX_KEY_GENERATIONS):
        secret = demo_key_secret(tenant.slug, generation)
        existing = ApiKey.objects.filter(secret_hash=apikey_hash(secret)).first()
        if existing is None:
            apikey_issue_known_secret(tenant=tenant, name=DEMO_KEY_NAME, scopes=None, secret=secret, actor=None)
            return secret
        usable = existing.revoked_at is None and (existing.expires_at is None or existing.expires_at > now)
        if usable and existing.tenant_id == tenant.pk:
            return secret
    raise RuntimeError(f"{MAX_KEY_GENERATIONS} demo keys of {tenant.slug} are revoked; revoke fewer or reset the db.")


@transaction.atomic
def demo_seed() -> dict:
    """Create or refresh the demo users, plan, flags, tenants and API keys; return logins and key secrets."""
    users = _users()
    _flags()
    plan = Plan.objects.filter(code=DEMO_PLAN).first()
    if plan is None:
        # Empty limits: the plan inherits RATE_LIMIT_REQUESTS_PER_MINUTE / RATE_LIMIT_BURST_SIZE.
        plan = plan_create(code=DEMO_PLAN, name="Standard", default_flags={"streaming_responses": True}, actor=None)
    api_keys = {slug: _api_key(_tenant(slug, spec, plan)) for slug, spec in DEMO_TENANTS.items()}
    return {"users": users, "api_keys": api_keys}
