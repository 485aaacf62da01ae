"""Tiny shared kernel: ids, clock, errors, pagination, tenancy context, settings."""
