"""In-memory fakes of the ports (persistence, engine) for unit tests."""
