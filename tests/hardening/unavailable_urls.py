"""The real URL conf plus two views that let a dependency failure escape, as an unguarded view would."""

from django.db import connection
from django.db.utils import load_backend
from django.http import HttpResponse
from django.urls import path

from agentapi_admin.urls import urlpatterns as app_patterns
from resilience.connection import get_redis, key


def redis_write(request):
    """Write to Redis without catching anything."""
    get_redis().set(key("test", "write"), "1")
    return HttpResponse("written")


def database_read(request):
    """Query a database that cannot be reached (the real driver's error, not a stand-in)."""
    unreachable = dict(connection.settings_dict)
    if connection.vendor == "postgresql":
        unreachable["NAME"] = "faults_no_such_database"
    else:
        unreachable["NAME"] = "/nonexistent-directory/db.sqlite3"
    other = load_backend(unreachable["ENGINE"]).DatabaseWrapper(unreachable, alias="unreachable")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        other.close()
    return HttpResponse("read")


urlpatterns = [
    path("test/redis-write/", redis_write),
    path("api/v1/test/redis-write", redis_write),
    path("test/database/", database_read),
    path("api/v1/test/database", database_read),
    *app_patterns,
]
