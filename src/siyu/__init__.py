"""siyu (私域): private-domain operations for Chinese consumer brands."""

__version__ = "0.1.0"
