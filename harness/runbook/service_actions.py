"""Runbook actions: service_actions."""
from __future__ import annotations
