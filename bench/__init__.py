"""llamaql's benchmarks: `python -m bench --help` (or `make bench`)."""
