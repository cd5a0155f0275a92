"""Session engines with a per-user index; SESSION_STORAGE picks one in settings."""
