"""Engines, sessions, workspace scoping, migrations and Arrow transfer."""
