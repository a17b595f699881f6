"""The air-gapped bundle: one archive holding everything an offline install needs, with hashes."""
