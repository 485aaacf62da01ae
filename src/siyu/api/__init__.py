"""HTTP edge: parse, authenticate, call a domain facade, present."""
