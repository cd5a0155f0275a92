"""Every project command builds its parser and prints --help (Zulip's TestCommandsCanStart)."""

import pytest
from django.core.management import get_commands, load_command_class

from agentapi_admin.command import OperationCommand

PROJECT_APPS = {"audit", "tenants", "resilience", "console", "portal", "webhooks", "automation"}
PROJECT_COMMANDS = sorted(name for name, app in get_commands().items() if app in PROJECT_APPS)


def test_project_commands_are_found():
    assert {
        "cleanup_sessions",
        "flags_stale",
        "flush_apikey_last_used",
        "flush_flag_asks",
        "flush_usage",
        "probe_upstreams",
        "purge_tenant_cache",
        "redis_health",
        "reset_ratelimits",
        "rotate_encryption_key",
        "run_maintenance",
        "seed_demo",
        "admin_token_create",
    } <= set(PROJECT_COMMANDS)


@pytest.mark.parametrize("name", PROJECT_COMMANDS)
def test_command_help(name):
    command = load_command_class(get_commands()[name], name)
    help_text = command.create_parser("manage.py", name).format_help()
    assert help_text.startswith(f"usage: manage.py {name}")
    assert command.help.split()[0] in help_text
    if isinstance(command, OperationCommand):
        assert "--json" in help_text
        assert "Exit codes" in help_text
