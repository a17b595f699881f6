"""Answering: a prompt with numbered sources, the model's streamed answer, and its citations."""
