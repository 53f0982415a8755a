"""``paperwire`` commands for the search area (see paperwire.cli)."""

from __future__ import annotations

COMMANDS: list = []
