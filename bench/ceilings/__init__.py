"""Bare Starlette apps that do the least a route must do: the ceilings Portico is compared to.

Each runs in its own process under the same uvicorn, with the same flags `portico serve`
passes (`bench.ceilings.serving`).
"""
