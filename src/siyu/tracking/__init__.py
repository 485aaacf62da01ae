"""Tracking: short links (one per person and message, or one for a QR code or a page), the
clicks and scans on them with bots and replays told apart, and QR codes."""
