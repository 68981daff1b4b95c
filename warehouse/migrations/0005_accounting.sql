-- Every row read is accounted for: received = loaded + rejected + not_closed, where
-- not_closed counts bars that had not closed by the run's as-of (read, not stored).
-- A repair (ingest --full --replace) may remove stored bars the source no longer has.
-- DuckDB cannot alter a CHECK constraint, so run_series is rebuilt with the new one.

CREATE TABLE run_series_v5 (
    run_id       VARCHAR NOT NULL,
    source       VARCHAR NOT NULL,
    symbol       VARCHAR NOT NULL,
    interval     VARCHAR NOT NULL,
    received     BIGINT  NOT NULL,  -- rows the source read for the request
    loaded       BIGINT  NOT NULL,
    rejected     BIGINT  NOT NULL,
    not_closed   BIGINT  NOT NULL,  -- rows of bars not closed by the as-of
    new_bars     BIGINT  NOT NULL,  -- loaded bars whose key was not in bars before
    revised_bars BIGINT  NOT NULL,  -- loaded bars that replaced a stored bar with other values
    removed_bars BIGINT  NOT NULL,  -- stored bars a repair removed (the source no longer has them)
    first_ts     TIMESTAMPTZ,
    last_ts      TIMESTAMPTZ,
    PRIMARY KEY (run_id, source, symbol, interval),
    CHECK (received = loaded + rejected + not_closed)
);
INSERT INTO run_series_v5
SELECT run_id, source, symbol, interval, received, loaded, rejected, 0,
       new_bars, revised_bars, 0, first_ts, last_ts
FROM run_series;
DROP TABLE run_series;
ALTER TABLE run_series_v5 RENAME TO run_series;

ALTER TABLE runs ADD COLUMN not_closed BIGINT;  -- total over run_series

-- A quarantined row stays in bars_rejected as evidence; once a later load stores a
-- good bar at its ts (a corrected file, a repair), it is marked resolved.
ALTER TABLE bars_rejected ADD COLUMN resolved_by VARCHAR;       -- run that loaded a good bar at ts
ALTER TABLE bars_rejected ADD COLUMN resolved_at TIMESTAMPTZ;
