"""Configuration: seed formats accepted, bad values refused at start-up with the variable's name."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from agentapi_admin import envconfig as cfg

PROD = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 20 + "-production-secret-key-for-tests-only-0123456789",
    "TOKEN_ENCRYPTION_KEY": "ab" * 32,
    "ALLOWED_HOSTS": "admin.example.com",
}


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("3600s", 3600),
        ("30s", 30),
        ("3600", 3600),
        ("500ms", 0.5),
        ("5m", 300),
        ("1h", 3600),
        ("1d", 86400),
        (" 2S ", 2),
    ],
)
def test_duration_accepts_seed_forms(monkeypatch, raw, seconds):
    monkeypatch.setenv("SESSION_TTL", raw)
    assert cfg.duration("SESSION_TTL", "1s") == seconds


@pytest.mark.parametrize("raw", ["soon", "-5s", "5 minutes", "1e3", "s"])
def test_duration_rejects_with_name_and_form(monkeypatch, raw):
    monkeypatch.setenv("SESSION_TTL", raw)
    with pytest.raises(ImproperlyConfigured) as excinfo:
        cfg.duration("SESSION_TTL", "1s")
    assert "SESSION_TTL" in str(excinfo.value)
    assert "30s" in str(excinfo.value)


@pytest.mark.parametrize(
    ("raw", "value"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("false", False), ("0", False), ("off", False)],
)
def test_boolean_accepts_common_spellings(monkeypatch, raw, value):
    monkeypatch.setenv("RATE_LIMIT_ENABLED", raw)
    assert cfg.boolean("RATE_LIMIT_ENABLED", default=not value) is value


def test_boolean_refuses_typo_instead_of_defaulting(monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "ture")
    with pytest.raises(ImproperlyConfigured, match="RATE_LIMIT_ENABLED='ture' is invalid: expected true or false"):
        cfg.boolean("RATE_LIMIT_ENABLED", default=True)


def test_integer_bounds(monkeypatch):
    monkeypatch.setenv("REDIS_MAX_POOL_SIZE", "0")
    with pytest.raises(ImproperlyConfigured, match=r"REDIS_MAX_POOL_SIZE.*at least 1"):
        cfg.integer("REDIS_MAX_POOL_SIZE", 10, minimum=1)


def test_hex_key_never_echoes_the_value(monkeypatch):
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEY", "secretvalu")
    with pytest.raises(ImproperlyConfigured) as excinfo:
        cfg.hex_key("TOKEN_ENCRYPTION_KEY")
    assert "TOKEN_ENCRYPTION_KEY" in str(excinfo.value)
    assert "64 hexadecimal characters" in str(excinfo.value)
    assert "secretvalu" not in str(excinfo.value)


def test_url_error_redacts_password(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "http://user:hunter2@host:6379")
    with pytest.raises(ImproperlyConfigured) as excinfo:
        cfg.url("REDIS_URL", "", schemes=("redis", "rediss"))
    assert "hunter2" not in str(excinfo.value)
    assert "redis://" in str(excinfo.value)


def test_seed_env_example_values_load(load_settings):
    values, err = load_settings(
        [
            "RESILIENCE_REDIS_URL",
            "SESSION_COOKIE_AGE",
            "SESSION_ENGINE",
            "SESSION_CLEANUP_INTERVAL",
            "RESILIENCE_BREAKER_TIMEOUT",
            "RESILIENCE_RATE_LIMIT_ENABLED",
            "RESILIENCE_RATE_LIMIT_PER_MINUTE",
            "RESILIENCE_RATE_LIMIT_BURST",
            "RESILIENCE_BREAKER_FAILURE_THRESHOLD",
            "RESILIENCE_BREAKER_SUCCESS_THRESHOLD",
            "RESILIENCE_REDIS_MAX_POOL_SIZE",
            "RESILIENCE_REDIS_TIMEOUT",
        ],
        DEBUG="true",
        REDIS_ENABLE="true",
        REDIS_URL="redis://redis:6379",
        REDIS_PROTOCOL="native",
        REDIS_MAX_POOL_SIZE="10",
        REDIS_CONNECTION_TIMEOUT="5s",
        RATE_LIMIT_ENABLED="true",
        RATE_LIMIT_REQUESTS_PER_MINUTE="60",
        RATE_LIMIT_BURST_SIZE="10",
        CIRCUIT_BREAKER_ENABLED="true",
        CIRCUIT_BREAKER_FAILURE_THRESHOLD="5",
        CIRCUIT_BREAKER_SUCCESS_THRESHOLD="2",
        CIRCUIT_BREAKER_TIMEOUT="30s",
        SESSION_STORAGE="redis",
        SESSION_TTL="3600s",
        SESSION_CLEANUP_INTERVAL="300s",
        TOKEN_ENCRYPTION_KEY="0f" * 32,
    )
    assert values is not None, err
    assert values == {
        "RESILIENCE_REDIS_URL": "redis://redis:6379",
        "SESSION_COOKIE_AGE": 3600,
        "SESSION_ENGINE": "resilience.sessions.backend",
        "SESSION_CLEANUP_INTERVAL": 300.0,
        "RESILIENCE_BREAKER_TIMEOUT": 30.0,
        "RESILIENCE_RATE_LIMIT_ENABLED": True,
        "RESILIENCE_RATE_LIMIT_PER_MINUTE": 60,
        "RESILIENCE_RATE_LIMIT_BURST": 10,
        "RESILIENCE_BREAKER_FAILURE_THRESHOLD": 5,
        "RESILIENCE_BREAKER_SUCCESS_THRESHOLD": 2,
        "RESILIENCE_REDIS_MAX_POOL_SIZE": 10,
        "RESILIENCE_REDIS_TIMEOUT": 5.0,
    }


def test_upstash_url_wins_over_redis_url(load_settings):
    values, err = load_settings(
        ["RESILIENCE_REDIS_URL", "RESILIENCE_REDIS_URL_SOURCE"],
        DEBUG="true",
        REDIS_URL="redis://localhost:6379/0",
        UPSTASH_REDIS_URL="rediss://default:pw@eu1-example.upstash.io:6379",
    )
    assert values == {
        "RESILIENCE_REDIS_URL": "rediss://default:pw@eu1-example.upstash.io:6379",
        "RESILIENCE_REDIS_URL_SOURCE": "UPSTASH_REDIS_URL",
    }, err


def test_redis_password_applies_to_every_client(load_settings):
    values, err = load_settings(["CACHES"], DEBUG="true", REDIS_URL="redis://localhost:6379/0", REDIS_PASSWORD="s3cret")
    assert values is not None, err
    for alias in ("default", "sessions"):
        assert values["CACHES"][alias]["OPTIONS"]["CONNECTION_POOL_KWARGS"]["password"] == "s3cret"


def test_redis_disabled_falls_back_in_process_and_to_db_sessions(load_settings):
    values, err = load_settings(["CACHES", "SESSION_ENGINE"], DEBUG="true", REDIS_ENABLE="false")
    assert values is not None, err
    assert values["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    assert values["SESSION_ENGINE"] == "resilience.sessions.backends.db"


@pytest.mark.parametrize(
    ("env", "variable", "expected"),
    [
        ({"SESSION_TTL": "soon"}, "SESSION_TTL", "a duration such as 30s"),
        ({"TOKEN_ENCRYPTION_KEY": "0123456789"}, "TOKEN_ENCRYPTION_KEY", "64 hexadecimal characters"),
        ({"REDIS_PROTOCOL": "ftp"}, "REDIS_PROTOCOL", "one of native, rest"),
        ({"REDIS_ENABLE": "maybe"}, "REDIS_ENABLE", "true or false"),
        ({"RATE_LIMIT_REQUESTS_PER_MINUTE": "lots"}, "RATE_LIMIT_REQUESTS_PER_MINUTE", "a whole number"),
        ({"RATE_LIMIT_BURST_SIZE": "-1"}, "RATE_LIMIT_BURST_SIZE", "between 0 and 1000000"),
        ({"CIRCUIT_BREAKER_TIMEOUT": "fast"}, "CIRCUIT_BREAKER_TIMEOUT", "a duration"),
        ({"CIRCUIT_BREAKER_FAILURE_THRESHOLD": "0"}, "CIRCUIT_BREAKER_FAILURE_THRESHOLD", "between 1 and 10000"),
        ({"SESSION_STORAGE": "memcached"}, "SESSION_STORAGE", "one of redis, cached_db, db"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL", "redis:// or rediss://"),
        ({"UPSTASH_REDIS_URL": "redis://x.upstash.io:6379"}, "UPSTASH_REDIS_URL", "rediss://"),
        ({"REDIS_CONNECTION_TIMEOUT": "0s"}, "REDIS_CONNECTION_TIMEOUT", "at least"),
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL", "postgres://"),
        ({"RATE_LIMIT_FAIL_MODE": "sometimes"}, "RATE_LIMIT_FAIL_MODE", "one of open, closed"),
        ({"REDIS_PROTOCOL": "rest"}, "UPSTASH_REDIS_REST_URL", "REDIS_PROTOCOL=rest needs"),
        (
            {
                "REDIS_PROTOCOL": "rest",
                "UPSTASH_REDIS_REST_URL": "https://x.upstash.io",
                "UPSTASH_REDIS_REST_TOKEN": "t",
            },
            "UPSTASH_REDIS_URL",
            "used only for health probing",
        ),
        ({**PROD, "SECRET_KEY": ""}, "SECRET_KEY", "at least 50 characters"),
        ({**PROD, "TOKEN_ENCRYPTION_KEY": ""}, "TOKEN_ENCRYPTION_KEY", "when DEBUG=false"),
        ({**PROD, "TOKEN_ENCRYPTION_KEY": "00" * 32}, "TOKEN_ENCRYPTION_KEY", "when DEBUG=false"),
        ({**PROD, "ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS", "when DEBUG=false"),
    ],
)
def test_bad_value_stops_start_up_naming_the_variable(load_settings, env, variable, expected):
    env = {"DEBUG": "true", **env}
    values, stderr = load_settings(["DEBUG"], **env)
    assert values is None, "start-up should have failed"
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured:"), stderr
    assert variable in last_line
    assert expected in last_line


def test_production_settings_pass_check_deploy(tmp_path):
    from tests.conftest import clean_env, run_python

    env = clean_env(**PROD, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = run_python(
        "import django, sys; django.setup(); from django.core.management import call_command; "
        "call_command('check', deploy=True, fail_level='WARNING')",
        env,
    )
    assert result.returncode == 0, result.stderr


def test_session_max_age_absolute_defaults_to_12h_and_must_cover_session_ttl(load_settings):
    values, _ = load_settings(["RESILIENCE_SESSION_MAX_AGE_ABSOLUTE"], DEBUG="true")
    assert values["RESILIENCE_SESSION_MAX_AGE_ABSOLUTE"] == 12 * 3600
    values, _ = load_settings(["RESILIENCE_SESSION_MAX_AGE_ABSOLUTE"], DEBUG="true", SESSION_MAX_AGE_ABSOLUTE="8h")
    assert values["RESILIENCE_SESSION_MAX_AGE_ABSOLUTE"] == 8 * 3600
    values, err = load_settings(["SESSION_TTL"], DEBUG="true", SESSION_MAX_AGE_ABSOLUTE="soon")
    assert values is None and "SESSION_MAX_AGE_ABSOLUTE" in err
    values, err = load_settings(["SESSION_TTL"], DEBUG="true", SESSION_TTL="2h", SESSION_MAX_AGE_ABSOLUTE="1h")
    assert values is None and "SESSION_MAX_AGE_ABSOLUTE" in err and "SESSION_TTL" in err


def test_email_url_configures_the_email_backend(load_settings):
    names = ["EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_USE_TLS", "TENANTS_INVITATION_EMAIL"]
    values, err = load_settings(names, DEBUG="true", EMAIL_URL="smtp+tls://mailer:pw@smtp.example.test:587")
    assert values == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.test",
        "EMAIL_PORT": 587,
        "EMAIL_USE_TLS": True,
        "TENANTS_INVITATION_EMAIL": True,
    }, err


def test_without_email_url_development_prints_and_production_sends_nothing(load_settings):
    values, err = load_settings(["EMAIL_BACKEND", "TENANTS_INVITATION_EMAIL"], DEBUG="true")
    assert values == {
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "TENANTS_INVITATION_EMAIL": True,
    }
    values, err = load_settings(
        ["TENANTS_INVITATION_EMAIL", "TENANTS_INVITATION_TTL"],
        DEBUG="false",
        SECRET_KEY="x" * 60,
        TOKEN_ENCRYPTION_KEY="1" * 64,
        ALLOWED_HOSTS="admin.example.test",
        TENANTS_INVITATION_TTL="2d",
    )
    assert values == {"TENANTS_INVITATION_EMAIL": False, "TENANTS_INVITATION_TTL": 172800.0}, err


def test_a_bad_email_url_names_the_variable(load_settings):
    values, err = load_settings(["EMAIL_BACKEND"], DEBUG="true", EMAIL_URL="carrier-pigeon://coop")
    assert values is None and "EMAIL_URL=" in err and "smtp+tls://" in err
