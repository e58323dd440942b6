"""Checking a live endpoint: the V2 client, smoke tests, load tests and monitoring."""
