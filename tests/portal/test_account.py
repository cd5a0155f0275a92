"""Account pages: password change and reset through Django's views and the email backend; readable devices."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from portal.devices import device_label
from tests.tenants.factories import make_user

from .conftest import PASSWORD, client_for

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-fresh-Passphrase-42"


def test_password_change_needs_the_old_password_and_keeps_this_session(world):
    client = client_for(world.a_owner)
    url = reverse("portal:password_change")
    assert client.get(url).status_code == 200
    wrong = client.post(url, {"old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert wrong.status_code == 200
    assert "Your old password was entered incorrectly" in wrong.content.decode()
    done = client.post(url, {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("portal:account")
    assert "Your password was changed" in client.get(reverse("portal:account")).content.decode()
    world.a_owner.refresh_from_db()
    assert world.a_owner.check_password(NEW_PASSWORD)


def test_password_change_reports_every_problem_with_the_new_password(world):
    client = client_for(world.a_owner)
    response = client.post(
        reverse("portal:password_change"), {"old_password": PASSWORD, "new_password1": "123", "new_password2": "124"}
    )
    assert response.status_code == 200
    assert "The two password fields didn\u2019t match." in response.content.decode()


def test_password_change_requires_sign_in():
    response = Client().get(reverse("portal:password_change"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("portal:login"))


def test_password_reset_mails_a_link_that_sets_a_new_password():
    user = make_user("resetme", email="resetme@example.com")
    client = Client()
    login_page = client.get(reverse("portal:login")).content.decode()
    assert f'href="{reverse("portal:password_reset")}"' in login_page
    response = client.post(reverse("portal:password_reset"), {"email": "resetme@example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("portal:password_reset_done")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["resetme@example.com"]
    link = re.search(r"http://testserver(/portal/password-reset/\S+/\S+/)", mail.outbox[0].body).group(1)
    form_url = client.get(link)["Location"]  # Django swaps the token for a session marker
    page = client.get(form_url)
    assert page.status_code == 200 and "new_password1" in page.content.decode()
    done = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("portal:password_reset_complete")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert client.get(link).status_code == 200  # a used link is invalid now
    assert "no longer valid" in client.get(link).content.decode()


def test_password_reset_for_an_unknown_address_says_the_same_and_sends_nothing():
    response = Client().post(reverse("portal:password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("portal:password_reset_done")
    assert mail.outbox == []


def test_password_reset_without_an_email_server_is_not_offered(settings):
    settings.PORTAL_PASSWORD_RESET = False
    assert Client().get(reverse("portal:password_reset")).status_code == 404
    assert reverse("portal:password_reset") not in Client().get(reverse("portal:login")).content.decode()


@pytest.mark.parametrize(
    ("user_agent", "label"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36",
            "Chrome 120 on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.1 Safari/605.1.15",
            "Safari 17 on macOS",
        ),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox 121 on Linux"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
            "Edge 120 on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.1 Mobile/15E148 Safari/604.1",
            "Safari 17 on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.6099.144 Mobile Safari/537.36",
            "Chrome 120 on Android",
        ),
        ("curl/8.5.0", "curl 8"),
        ("", "Unknown browser"),
        ("<script>", "Unknown browser"),
    ],
)
def test_device_label_names_browser_and_os(user_agent, label):
    assert device_label(user_agent) == label


def test_sessions_list_shows_a_readable_device_not_the_raw_user_agent(world):
    user_agent = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
    client = Client(HTTP_USER_AGENT=user_agent)
    assert client.login(username=world.a_owner.get_username(), password=PASSWORD)
    client.get(reverse("portal:account"))  # the first request records the device
    html = client.get(reverse("portal:account")).content.decode()
    assert "Firefox 121 on Linux" in html
    assert "Gecko/20100101" in html  # the raw string stays available as a tooltip
    assert html.count("Gecko/20100101") == 1
    assert get_user_model().objects.get(pk=world.a_owner.pk).is_active
