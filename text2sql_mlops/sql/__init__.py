"""SQLite and SQL text: statement lexing, the read-only sandbox, the database file, its catalog, query plans and query shapes."""
