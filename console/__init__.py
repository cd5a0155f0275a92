"""Admin operations pages: Redis health, rate-limit counters, circuit breakers, sessions."""
