"""Gunicorn config for the bootstrap benchmark: none, so gunicorn's defaults and the command line apply.

Passed with `-c` so gunicorn does not pick up the repository's production
`gunicorn.conf.py` (access log to stdout, worker recycling every ~2000 requests),
which would add the same noise to every target and hide the difference measured.
"""
