"""Batch analytics: the engine's snapshots of the store, RFM, lifecycle and other computed metrics."""
