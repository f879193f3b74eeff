"""Adapters backed by the operating system: wall clock and secure randomness."""
