"""Promotion to production: the approvals model, requests and their rollout, hooks, the panel."""
