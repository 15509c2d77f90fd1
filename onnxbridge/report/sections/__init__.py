"""One module per report section; ``report/registry.py`` registers them in the order they are laid out."""
