"""Digest pages (subscribe, confirm, unsubscribe): owned by the digest area.

Placeholder so the app factory can always include it; the digest engineer replaces it.
"""

from fastapi import APIRouter

router = APIRouter()
