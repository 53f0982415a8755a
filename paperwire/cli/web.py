"""``paperwire`` commands for the web area (see paperwire.cli)."""

from __future__ import annotations

COMMANDS: list = []
