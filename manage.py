#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# sysexits.h EX_CONFIG: a setting is wrong; the message names the variable and the expected form.
EX_CONFIG = 78


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentapi_admin.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # The message is the whole story; a traceback through settings.py would bury it.
        sys.stderr.write(f"Configuration error: {exc}\n")
        sys.exit(EX_CONFIG)


if __name__ == "__main__":
    main()
