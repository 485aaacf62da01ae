"""Customer profiles: one per person, with traits."""
