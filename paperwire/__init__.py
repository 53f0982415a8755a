"""paperwire: a self-hostable research-paper service.

The library owns the logic; ``paperwire.cli`` and ``paperwire.web`` are thin
adapters over it and are never imported from here.
"""

__version__ = "0.1.0"
