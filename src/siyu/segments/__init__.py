"""Segments: rules over people kept as memberships, previews, exports and holdouts."""
