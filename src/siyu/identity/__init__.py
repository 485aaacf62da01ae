"""Identifiers of people across channels and the graph that joins them into profiles."""
