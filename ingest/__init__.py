"""Ingestion: parse documents, chunk them to the embedder's window, embed, and index them."""
