"""Converters: one module per source framework, registered in :mod:`.registry`."""
