"""Read-only metrics over the other domains."""
