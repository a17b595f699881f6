"""Retrieval and answer quality measured against a gold set of questions (`appliance eval`)."""
