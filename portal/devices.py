"""A readable label for a session's device ("Firefox 121 on Linux") from its User-Agent header."""

from __future__ import annotations

import re

# Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari", Android says "Linux".
_BROWSERS = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"\bOPR/(\d+)")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"\bVersion/(\d+)[\d.]* (?:Mobile/\S+ )?Safari/")),
)
_SYSTEMS = (
    ("Android", re.compile(r"\bAndroid\b")),
    ("iOS", re.compile(r"\b(?:iPhone|iPad|iPod)\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("macOS", re.compile(r"\b(?:Macintosh|Mac OS X)\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)
# Tools name themselves first: "curl/8.5.0", "python-requests/2.31".
_TOOL = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]{0,30})/(\d+)")
UNKNOWN = "Unknown browser"


def device_label(user_agent: str) -> str:
    """Return "<browser> <major version> on <OS>", a tool's "<name> <major version>", or "Unknown browser"."""
    user_agent = (user_agent or "")[:512]
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), None)
    for name, pattern in _BROWSERS:
        found = pattern.search(user_agent)
        if found:
            return f"{name} {found.group(1)}" + (f" on {system}" if system else "")
    tool = _TOOL.match(user_agent)
    if tool and tool.group(1) != "Mozilla":
        return f"{tool.group(1)} {tool.group(2)}"
    return f"{UNKNOWN} on {system}" if system else UNKNOWN
