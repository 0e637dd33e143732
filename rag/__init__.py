"""docqa core: settings, the index store, retrieval, prompting, generation, the API and the CLI."""

__version__ = "0.1.0"
