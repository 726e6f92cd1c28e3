"""PostgreSQL: the asyncpg pool and plain-SQL migrations."""
