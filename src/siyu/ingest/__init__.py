"""Data in: events (Segment-spec), imports and callbacks."""
