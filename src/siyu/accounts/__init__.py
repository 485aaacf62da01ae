"""Workspaces (brands), users, roles, API keys, login sessions and the audit log."""
