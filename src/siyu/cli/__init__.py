"""Command-line edge (Typer)."""
