"""The on-prem RAG appliance: API, retrieval and answering, CLI."""
