"""The demo tenant: a deterministic generator that each domain extends with its own seeder."""
