"""Everything that touches DuckDB: migrations, connections, typed writes and reads.

Every SQL statement of attnviz lives in this package; other code calls its functions.
"""
