"""Customer organisations of the tenant."""
