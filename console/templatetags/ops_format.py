"""Formatting for the ops pages: "n/a" for hidden fields, short durations, readable times."""

from __future__ import annotations

from datetime import datetime

from django import template

register = template.Library()


@register.filter
def na(value):
    """Render None (a field the provider hides or a probe that failed) as n/a."""
    return "n/a" if value is None or value == "" else value


@register.filter
def seconds(value):
    """Render a number of seconds as 2d 3h, 4h 5m, 6m 7s or 8s."""
    if value is None:
        return "n/a"
    total = round(float(value))
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        parts = [f"{days}d", f"{hours}h" if hours else ""]
    elif hours:
        parts = [f"{hours}h", f"{minutes}m" if minutes else ""]
    elif minutes:
        parts = [f"{minutes}m", f"{secs}s" if secs else ""]
    else:
        parts = [f"{secs}s"]
    return sign + " ".join(part for part in parts if part)


@register.filter
def when(value):
    """Render an ISO timestamp or datetime as YYYY-MM-DD HH:MM:SS (UTC)."""
    if not value:
        return "n/a"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M:%S")


@register.filter
def percent(value, digits=1):
    """Render a 0-1 ratio as a percentage."""
    if value is None:
        return "n/a"
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def yesno_na(value):
    """Render True/False/None as on/off/n/a."""
    return "n/a" if value is None else ("on" if value else "off")


@register.filter
def millis(value):
    """Convert milliseconds to seconds."""
    return None if value is None else float(value) / 1000


@register.filter
def clock(value):
    """Render a datetime as HH:MM:SS (UTC)."""
    if not value:
        return "n/a"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%H:%M:%S")
