"""Portico's core: entities, rules and ports. Imports the standard library only."""
