"""SMTP: the email sender for real mail servers."""
