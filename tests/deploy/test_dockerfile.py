"""The Dockerfile: base, non-root user, cached dependency layer, build-time collectstatic, entrypoint."""

from __future__ import annotations

import json
import re
import runpy
import shlex
import subprocess
import sys

from tests.conftest import BASE_DIR, clean_env

DOCKERFILE = BASE_DIR / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    pairs = []
    for line in logical:
        name, _, args = line.partition(" ")
        pairs.append((name.upper(), args.strip()))
    return pairs


def _index(name: str, predicate=lambda args: True) -> int:
    return next(i for i, (n, a) in enumerate(instructions()) if n == name and predicate(a))


def test_slim_python_311_base():
    froms = [args for name, args in instructions() if name == "FROM"]
    assert len(froms) == 1
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", froms[0])


def test_runs_as_a_non_root_user_from_before_the_entrypoint():
    steps = instructions()
    users = [(i, args) for i, (name, args) in enumerate(steps) if name == "USER"]
    assert users, "no USER instruction: the container would run as root"
    last_user_index, user = users[-1]
    assert user not in {"root", "0", "0:0"}
    # Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert user == "10001:10001"
    assert any(name == "RUN" and "useradd --system --uid 10001 --gid app" in args for name, args in steps)
    # Nothing runs as root after the switch, and the entrypoint comes after it.
    assert all(name != "RUN" for name, _ in steps[last_user_index + 1 :])
    assert _index("CMD") > last_user_index


def test_dependencies_install_in_a_layer_cached_apart_from_the_code():
    copy_requirements = _index("COPY", lambda a: a == "requirements.txt ./")
    # The lock file pins every package with its hashes; pip refuses anything else.
    install = _index("RUN", lambda a: "pip install --no-deps --require-hashes -r requirements.txt" in a)
    copy_code = _index("COPY", lambda a: a == ". .")
    assert copy_requirements < install < copy_code
    assert "--mount=type=cache,target=/root/.cache/pip" in instructions()[install][1]


def test_collectstatic_runs_at_build_with_a_build_only_environment():
    steps = instructions()
    collect = _index("RUN", lambda a: "collectstatic" in a)
    assert collect > _index("COPY", lambda a: a == ". .")
    # The dummy values are RUN-scoped assignments, never ENV that would reach the running container.
    env_lines = " ".join(args for name, args in steps if name == "ENV")
    for variable in ("SECRET_KEY", "TOKEN_ENCRYPTION_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL"):
        assert variable not in env_lines
    assert "build-only" in steps[collect][1]


def test_the_build_time_collectstatic_command_works(tmp_path):
    # Run the Dockerfile's own command line with its own variables (a fresh settings import).
    command = next(args for name, args in instructions() if name == "RUN" and "collectstatic" in args)
    command = command.split("&&")[0]
    words = shlex.split(command)
    assignments = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
    argv = [word for word in words if not re.match(r"^[A-Z_]+=", word)]
    assert argv == ["python", "manage.py", "collectstatic", "--noinput"]
    assignments["DATABASE_URL"] = f"sqlite:///{tmp_path / 'build.sqlite3'}"
    result = subprocess.run(
        [sys.executable, *argv[1:]],
        cwd=BASE_DIR,
        env=clean_env(**assignments),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((BASE_DIR / "staticfiles" / "staticfiles.json").read_text())
    assert manifest["paths"], "WhiteNoise's manifest lists no files"


def test_healthcheck_probes_readyz_with_the_seed_timings():
    health = next(args for name, args in instructions() if name == "HEALTHCHECK")
    assert "--interval=30s --timeout=10s --start-period=40s --retries=3" in health
    assert health.endswith('CMD ["python", "-m", "agentapi_admin.healthcheck"]')
    assert "/readyz" in (BASE_DIR / "agentapi_admin" / "healthcheck.py").read_text()


def test_entrypoint_is_gunicorn_with_gthread_workers():
    cmd = json.loads(next(args for name, args in instructions() if name == "CMD"))
    assert cmd == ["gunicorn", "--config", "gunicorn.conf.py", "agentapi_admin.wsgi:application"]
    config = runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))
    assert config["worker_class"] == "gthread"
    assert config["threads"] >= 2
    assert config["bind"] == "0.0.0.0:8000"


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context():
    ignored = {line.strip() for line in (BASE_DIR / ".dockerignore").read_text().splitlines()}
    assert {".env", ".git", ".venv", "var/", "staticfiles/"} <= ignored
