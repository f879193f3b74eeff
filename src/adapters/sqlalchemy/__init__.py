"""SQLAlchemy 2 (async) adapters: engine, records, repositories, unit of work, migrations.

Postgres (asyncpg) in production, SQLite (aiosqlite) as the embedded default.
"""
