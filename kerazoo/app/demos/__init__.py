"""What `kerazoo demo ...` runs: one module per demo family. Nothing is
imported here, so running one demo loads only its own code."""
