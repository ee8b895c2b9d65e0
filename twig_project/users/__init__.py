"""The reference project's user model: the email is the username."""
