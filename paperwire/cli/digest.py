"""``paperwire`` commands for the digest area (see paperwire.cli)."""

from __future__ import annotations

COMMANDS: list = []
