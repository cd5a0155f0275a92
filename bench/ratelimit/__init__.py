"""Benchmark: the limiter's decision against a raw EVALSHA round trip and django-ratelimit, same Redis, same run."""
