"""Local fake servers of outside services, for integration tests."""
