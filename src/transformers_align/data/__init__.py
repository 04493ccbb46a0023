"""Training-data readers, writers and builders (JSON Lines helpers, AFP data generation, language names)."""
