"""Answer 503 (never 500) when a view finds the database unreachable."""

from __future__ import annotations

import logging

from resilience.exceptions import database_unavailable
from resilience.sessions.middleware import store_unavailable_response

logger = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    """Turn a database that cannot be reached into the 503 page (JSON for JSON clients), with Retry-After.

    Only connection-level errors (OperationalError, InterfaceError): a query the database
    rejects is a bug and stays a 500. The service API's warm path needs no database and
    keeps answering from Redis.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if database_unavailable(exception):
            # The class only: the driver's message names the host, port and database.
            logger.warning(
                "database unavailable during %s %s: %s", request.method, request.path, type(exception).__name__
            )
            return store_unavailable_response(request, what="database")
        return None
