"""`{{ session.user_agent|device_label }}`: "Firefox 121 on Linux" instead of the raw header."""

from django import template

from portal.devices import device_label as _device_label

register = template.Library()


@register.filter
def device_label(user_agent: str) -> str:
    """Return the readable browser and OS of a User-Agent header."""
    return _device_label(user_agent)
