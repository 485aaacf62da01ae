"""Channels: adapters to every provider, templates, and the one send policy."""
