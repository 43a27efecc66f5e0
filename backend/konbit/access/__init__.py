"""Who may act: API keys (and, later, web users and agents' PINs), stored as hashes."""
