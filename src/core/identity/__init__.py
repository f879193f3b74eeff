"""Identity: users, credentials and browser sessions."""
