"""The project package as an app, so its system checks run with `manage.py check`."""

from django.apps import AppConfig


class ProjectConfig(AppConfig):
    name = "agentapi_admin"
    verbose_name = "agentapi-admin project"

    def ready(self) -> None:
        from agentapi_admin import checks  # noqa: F401 - registers the checks
