"""The account budget of the sign-in throttle is the account authentication finds, and only failures spend it."""

from __future__ import annotations

import string
import sys
import unicodedata
from functools import cache

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from resilience.ratelimit.selectors import limited_identities
from resilience.throttle import username_key

PASSWORD = "right-pass-123"
# Django's username validator: letters, digits and @.+-_ (ASCII here, so variants are about Unicode forms).
ALPHABET = string.ascii_letters + string.digits + "@.+-_"


@cache
def compatibility_forms() -> dict[str, list[str]]:
    """Map each ALPHABET character to every code point whose NFKC form is exactly that character."""
    forms: dict[str, list[str]] = {c: [c] for c in ALPHABET}
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        folded = unicodedata.normalize("NFKC", char)
        if folded in forms and folded != char:
            forms[folded].append(char)
    return forms


@pytest.fixture
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def owner(db, fast_hasher):
    return get_user_model().objects.create_user("acme-owner", "owner@example.com", PASSWORD)


def sign_in(username, password="wrong", path="/admin/login/", ip="10.8.0.1"):  # noqa: S107 - a test credential
    return Client().post(path, {"username": username, "password": password}, REMOTE_ADDR=ip).status_code


def full_width(text: str, only: str | None = None) -> str:
    """Spell ASCII characters (all, or those in `only`) in their full-width forms (U+FF01..U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if only is None or c in only else c for c in text)


FULL_WIDTH = full_width("acme-owner")
VARIANTS = [
    FULL_WIDTH,
    full_width("acme-owner", "a"),
    full_width("acme-owner", "o"),
    full_width("acme-owner", "r"),
    " acme-owner\u3000",
    "ACME-OWNER",
]


@pytest.mark.parametrize("path", ["/admin/login/", "/portal/login/"])
def test_unicode_spellings_of_an_account_share_its_budget(owner, settings, path):
    settings.RESILIENCE_FORM_RATE_USERNAME = "5/h"
    settings.RESILIENCE_FORM_RATE_IP = "100/h"
    assert unicodedata.normalize("NFKC", FULL_WIDTH) == "acme-owner"
    answers = [sign_in(name, path=path, ip=f"10.8.1.{n}") for n, name in enumerate(VARIANTS)]
    assert answers == [200] * 5 + [429]
    # The plain name is throttled, and so is the right password through any other spelling.
    assert sign_in("acme-owner", PASSWORD, path=path, ip="10.8.2.1") == 429
    assert sign_in(full_width("acme-owner", "acme-"), PASSWORD, path=path, ip="10.8.2.2") == 429


def test_admin_and_portal_share_one_account_budget(owner, settings):
    settings.RESILIENCE_FORM_RATE_USERNAME = "4/h"
    settings.RESILIENCE_FORM_RATE_IP = "100/h"
    answers = [sign_in(FULL_WIDTH, path=path) for path in ("/admin/login/", "/portal/login/") * 2]
    assert answers == [200] * 4
    assert sign_in("acme-owner", PASSWORD, path="/portal/login/") == 429


def test_successful_sign_ins_are_not_counted(db, fast_hasher, settings):
    # Hourly refills: the six failures below stay counted however slow the machine is (5/m refills every 12 s).
    settings.RESILIENCE_FORM_RATE_USERNAME = "5/h"
    settings.RESILIENCE_FORM_RATE_IP = "20/h"
    get_user_model().objects.create_superuser("admin", "admin@example.com", PASSWORD)
    assert [sign_in("admin", PASSWORD) for _ in range(25)] == [302] * 25
    assert [sign_in("admin", PASSWORD, path="/portal/login/") for _ in range(3)] == [302] * 3
    assert limited_identities(scope="form")[0] == []  # a full allowance is not listed
    # Failures still count, and the budget they spend is listed on the counters page.
    assert [sign_in("admin") for _ in range(6)] == [200] * 5 + [429]
    states, _ = limited_identities(scope="form")
    by_identity = {s.identity: s for s in states}
    assert by_identity["login:user:admin"].limited and by_identity["login:user:admin"].burst + 1 == 5


def test_a_reset_on_the_counters_page_gives_the_account_its_budget_back(owner, settings):
    settings.RESILIENCE_FORM_RATE_USERNAME = "2/h"
    settings.RESILIENCE_FORM_RATE_IP = "100/h"
    assert [sign_in("acme-owner") for _ in range(3)] == [200, 200, 429]
    staff = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    console = Client()
    console.force_login(staff)
    target = {"scope": "form", "tenant": "-", "identity": "login:user:acme-owner", "reason": "locked out"}
    assert console.post("/admin/ops/ratelimits/reset/", target).status_code == 302
    assert sign_in(FULL_WIDTH, PASSWORD, path="/portal/login/") == 302


@st.composite
def account_and_spelling(draw):
    """An ASCII username and a spelling of it that Django's sign-in form resolves to the same account."""
    username = draw(st.text(alphabet=ALPHABET, min_size=1, max_size=30))
    forms = compatibility_forms()
    spelled = "".join(draw(st.sampled_from(forms[char])) for char in username)
    padding = st.text(alphabet=" \t\u3000\u00a0\u2003", max_size=2)
    return username, draw(padding) + spelled + draw(padding)


@pytest.mark.django_db
@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=account_and_spelling())
def test_any_spelling_that_signs_in_shares_the_account_budget(fast_hasher, pair):
    username, spelling = pair
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(PASSWORD)
    user.save()
    form = AuthenticationForm(data={"username": spelling, "password": PASSWORD})
    assert form.is_valid(), (spelling, form.errors)  # the spelling really signs in as the account
    assert form.get_user() == user
    assert username_key(spelling) == username_key(username)
