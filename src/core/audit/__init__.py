"""Audit trail of security- and money-relevant actions."""
