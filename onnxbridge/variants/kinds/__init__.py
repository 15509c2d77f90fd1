"""One module per built-in variant kind, each declaring ``KIND``; ``variants/registry.py`` registers them."""
