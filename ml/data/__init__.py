"""Data access: database URLs and bulk loading (sources, time windows and the cache come next)."""
