"""OOM-killed app servers: a fault, the runbook action that rebuilds the service, a report section."""
