"""The lock files: every package pinned with hashes, matching pyproject.toml, used by make, CI and the image."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import BASE_DIR

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\]+) \\$")


def locked(name: str) -> dict[str, str]:
    """Return {package: version} of a lock file, checking that every pin carries at least one sha256 hash."""
    pins, lines = {}, (BASE_DIR / name).read_text().splitlines()
    for index, line in enumerate(lines):
        found = PIN.match(line)
        if found:
            assert lines[index + 1].strip().startswith("--hash=sha256:"), f"{name}: {found.group(1)} has no hash"
            pins[found.group(1).lower().replace("_", "-")] = found.group(2)
        else:
            assert not re.match(r"^[A-Za-z0-9]", line), f"{name}: unpinned or unhashed line {line!r}"
    return pins


def declared(extra: str | None = None) -> set[str]:
    project = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["project"]
    specs = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return {re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in specs}


def test_runtime_lock_pins_every_declared_dependency_with_hashes():
    runtime = locked("requirements.txt")
    assert declared() <= set(runtime)
    assert runtime["django"].startswith("5.2.")


def test_dev_lock_holds_runtime_and_dev_dependencies_at_the_same_versions():
    runtime, dev = locked("requirements.txt"), locked("requirements-dev.txt")
    assert declared("dev") <= set(dev)
    assert {name: dev.get(name) for name in runtime} == runtime


def test_make_ci_and_the_image_install_from_the_locks_with_hashes_required():
    makefile = (BASE_DIR / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r requirements-dev.txt" in makefile
    assert "make test" in (BASE_DIR / ".ci" / "run").read_text()  # through the Makefile's install step
    assert "pip install --no-deps --require-hashes -r requirements.txt" in (BASE_DIR / "Dockerfile").read_text()
