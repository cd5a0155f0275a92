"""Redis health for the admin page, its JSON twin and the `redis_health` command."""
