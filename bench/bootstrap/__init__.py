"""Benchmark: warm GET /api/v1/bootstrap against a bare Django JSON view, same gunicorn, same run."""
