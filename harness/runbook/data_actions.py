"""Runbook actions: data_actions."""
from __future__ import annotations
