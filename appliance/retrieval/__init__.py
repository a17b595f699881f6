"""Retrieval: the chunks that best match a question."""
