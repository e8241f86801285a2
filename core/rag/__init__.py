"""Knowledge base (RAG): text extraction and structure-aware chunking.

`extract` turns an uploaded file into sections that carry page and heading metadata; `chunk` cuts
those sections into overlapping, size-limited chunks that never cross a heading boundary. Both are
pure functions with no database, embedding or UI dependency.
"""
