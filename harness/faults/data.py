"""Database data faults (accidental deletion)."""
from __future__ import annotations
