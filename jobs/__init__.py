"""Scheduled and on-demand jobs (catalog, scheduler, local and Ray executors).

Jobs call core services, never pages. The catalog arrives with the first domain that needs a job
(RAG tuning, retention enforcement, invoice runs); this package exists now so packaging and
imports are stable.
"""
