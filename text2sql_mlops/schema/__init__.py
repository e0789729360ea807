"""What a prompt shows of a database: schema text, table retrieval, the prompt's schema selection, schema recall."""
