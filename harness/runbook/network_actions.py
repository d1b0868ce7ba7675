"""Runbook actions: network_actions."""
from __future__ import annotations
