"""``paperwire`` commands for the harvest area (see paperwire.cli)."""

from __future__ import annotations

COMMANDS: list = []
