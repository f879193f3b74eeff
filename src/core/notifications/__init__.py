"""Notifications: email delivery, templates and per-user preferences."""
