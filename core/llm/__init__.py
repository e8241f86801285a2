"""LLM gateway: providers behind one interface, the router, the usage ledger and prices."""
