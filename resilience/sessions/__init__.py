"""Sessions that can be listed and revoked per user (the admin's sessions page)."""
