"""Campaigns: a segment, one or more variants of a message, a holdout and a time — approved when
large, sent exactly once per person through the channels' ledger, paused, resumed or cancelled."""
