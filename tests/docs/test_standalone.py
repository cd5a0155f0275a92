"""The README and docs/ stand alone: they name no file outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
DOCUMENTS = [BASE_DIR / "README.md", *sorted((BASE_DIR / "docs").glob("*.md"))]
# Files the project grew from live beside the repository, not in it.
OUTSIDE = re.compile(r"PRODUCT\.md|STYLE\.md|\.\./shared|DOCKER_REDIS_UPDATE_COMPLETE")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_document_names_no_file_outside_the_repository(document):
    hits = [
        f"{document.name}:{n}: {line.strip()}"
        for n, line in enumerate(document.read_text().splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "\n".join(hits)


def test_relative_links_point_inside_the_repository():
    for document in DOCUMENTS:
        for target in re.findall(r"\]\(([^)#:\s]+)", document.read_text()):
            resolved = (document.parent / target).resolve()
            assert resolved.is_relative_to(BASE_DIR), f"{document.name} links outside: {target}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_no_section_is_named_after_a_tracker_issue(document):
    # A reader has no tracker: "Rate limiter decision (issue 4)" says nothing; name the subject instead.
    hits = [
        f"{document.name}:{n}: {line.strip()}"
        for n, line in enumerate(document.read_text().splitlines(), start=1)
        if line.startswith("#") and re.search(r"\bissue[ -]?#?\d", line, re.IGNORECASE)
    ]
    assert not hits, "\n".join(hits)
