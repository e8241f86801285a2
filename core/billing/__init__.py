"""Billing: plans, usage-based charges, invoices, Stripe sync, revenue analytics."""
