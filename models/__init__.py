"""Model lifecycle: artifacts and their manifest, conversion, and vLLM launch profiles."""
