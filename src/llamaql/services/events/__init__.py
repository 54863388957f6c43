"""The `events` live feed: one dispatcher per process, one feed per subscription."""
