"""Adapters: implementations of the core ports, one package per technology."""
