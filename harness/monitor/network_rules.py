"""Alert rules and samplers for network scenarios (link utilisation)."""
from __future__ import annotations
