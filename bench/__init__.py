"""Benchmarks of Portico against bare ceilings: `make bench` runs `bench.run`."""
