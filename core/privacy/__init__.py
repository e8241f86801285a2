"""Privacy and compliance: consent, data-subject requests, retention, PII."""
