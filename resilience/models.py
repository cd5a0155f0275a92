"""The resilience app keeps its state in Redis; it has no database tables."""
