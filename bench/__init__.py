"""docqa benchmarks: `make bench` (one module per area); each prints a table and writes bench/results/<name>.json."""
