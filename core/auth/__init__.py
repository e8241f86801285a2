"""Accounts, roles, permissions and sessions."""
