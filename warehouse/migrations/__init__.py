"""The warehouse schema, one numbered SQL file per change (applied by ``warehouse.db``)."""
