"""Who is asking (principals, API keys, roles) and what they may read (document groups)."""
