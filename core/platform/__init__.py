"""Platform-wide views: backend health and the per-role home numbers."""
