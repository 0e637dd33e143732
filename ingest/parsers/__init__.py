"""One module per family of formats; ``ingest.parse`` is the public entry point that dispatches to them."""
