"""The bench's database URLs and the guards on what it may create, drop or delete."""

from __future__ import annotations

import pytest

from bench.services import BenchDatabase, delete_keys, plain_postgres_url, with_database


def test_the_bench_database_lives_on_the_server_of_the_given_url() -> None:
    db = BenchDatabase("postgresql+asyncpg://u:p@db.local:6543/postgres", "portico_bench_ab12")
    assert db.dsn == "postgresql://u:p@db.local:6543/portico_bench_ab12"
    assert db.sqlalchemy_url == "postgresql+asyncpg://u:p@db.local:6543/portico_bench_ab12"


def test_urls_keep_everything_but_the_database() -> None:
    url = "postgresql://u@h:5432/postgres?sslmode=disable"
    assert with_database(url, "other") == "postgresql://u@h:5432/other?sslmode=disable"
    assert plain_postgres_url("postgres://u@h/x") == "postgresql://u@h/x"


def test_a_url_of_another_database_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        plain_postgres_url("mysql://u@h/x")


@pytest.mark.parametrize("name", ['x"; DROP DATABASE postgres; --', "Portico", "", "1abc"])
def test_names_that_need_quoting_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unsafe database name"):
        BenchDatabase("postgresql://u@h/postgres", name)
    # Positive control: a plain generated name is accepted.
    assert BenchDatabase("postgresql://u@h/postgres", "portico_bench_0a1b").name


@pytest.mark.parametrize("prefix", ["", "bench:*", "bench:[a]:", "bench:?:"])
def test_key_deletion_refuses_prefixes_that_would_match_other_keys(prefix: str) -> None:
    # Refused before any connection is made (the URL points nowhere).
    with pytest.raises(ValueError, match="unsafe key prefix"):
        delete_keys("redis://127.0.0.1:1", prefix)
