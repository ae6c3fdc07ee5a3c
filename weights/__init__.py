"""Weight files and their manifest, shipped as package data (kerazoo._weights)."""
