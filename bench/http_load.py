"""Time-bounded HTTP load on two paths of a running Portico server; prints a ratio."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import httpx


async def _login(client: httpx.AsyncClient) -> None:
    csrf = (await client.get("/api/v1/auth/csrf")).json()["csrf_token"]
    name = f"bench{uuid.uuid4().hex[:10]}"
    body = {"email": f"{name}@example.com", "username": name, "password": "bench passphrase 42"}
    headers = {"X-CSRF-Token": csrf}
    (await client.post("/api/v1/users", json=body, headers=headers)).raise_for_status()
    login = {"email": body["email"], "password": body["password"]}
    (await client.post("/api/v1/auth/login", json=login, headers=headers)).raise_for_status()


async def _hammer(
    client: httpx.AsyncClient, path: str, seconds: float, workers: int
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            response = await client.get(path)
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
        "errors": errors,
        "requests": len(latencies),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    limits = httpx.Limits(max_connections=args.concurrency)
    signed_in = httpx.AsyncClient(base_url=args.base, timeout=10, limits=limits)
    # The floor goes without cookies: with one, authentication would look the session up
    # on /health too and the ratio would hide what authentication costs.
    anonymous = httpx.AsyncClient(base_url=args.base, timeout=10, limits=limits)
    async with signed_in, anonymous:
        await _login(signed_in)
        results = {}
        for path, client in (("/health", anonymous), ("/api/v1/users/me", signed_in)):
            results[path] = await _hammer(client, path, args.seconds, args.concurrency)
            r = results[path]
            print(
                f"{path:<20} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                f"p99 {r['p99_ms']:6.1f} ms  errors {r['errors']:.0f}/{r['requests']:.0f}"
            )
    ratio = results["/api/v1/users/me"]["rps"] / results["/health"]["rps"]
    print(f"ratio users/me / health: {ratio:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
