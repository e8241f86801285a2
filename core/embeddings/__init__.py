"""Text embeddings: the bundled all-MiniLM-L6-v2 (default) for retrieval and the semantic cache."""
