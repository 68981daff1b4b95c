-- Live sources and the history of attempts.
--
-- turnover: the traded value of a bar in the quote currency, as Bybit reports it;
-- NULL for sources that do not (sample, files, yfinance).
ALTER TABLE bars ADD COLUMN turnover DOUBLE;

-- A rerun replaces the rows of its work (run_series, validation_results, analytics),
-- so runs and run_series say what the latest attempt did. Each attempt also leaves a
-- row here, never replaced: when it ran, how it ended, and what it read and loaded.
CREATE TABLE run_attempts (
    run_id      VARCHAR     NOT NULL,
    attempt     INTEGER     NOT NULL,  -- 1, 2, ... as runs.attempts counts them
    flow_run_id VARCHAR,               -- the Prefect flow run of this attempt
    started_at  TIMESTAMPTZ NOT NULL,
    ended_at    TIMESTAMPTZ,           -- NULL while running, and when it crashed
    status      VARCHAR     NOT NULL
                CHECK (status IN ('running', 'succeeded', 'failed', 'crashed')),
    received    BIGINT,                -- totals over this attempt's run_series_attempts
    loaded      BIGINT,
    rejected    BIGINT,
    not_closed  BIGINT,
    message     VARCHAR,
    pid         INTEGER,
    host        VARCHAR,
    PRIMARY KEY (run_id, attempt)
);

-- Per attempt and series: what that attempt read and where each row went (the
-- series an attempt kept from an earlier, unfinished attempt have no row of it).
CREATE TABLE run_series_attempts (
    run_id       VARCHAR NOT NULL,
    attempt      INTEGER NOT NULL,
    source       VARCHAR NOT NULL,
    symbol       VARCHAR NOT NULL,
    interval     VARCHAR NOT NULL,
    received     BIGINT  NOT NULL,
    loaded       BIGINT  NOT NULL,
    rejected     BIGINT  NOT NULL,
    not_closed   BIGINT  NOT NULL,
    new_bars     BIGINT  NOT NULL,
    revised_bars BIGINT  NOT NULL,
    removed_bars BIGINT  NOT NULL,
    first_ts     TIMESTAMPTZ,
    last_ts      TIMESTAMPTZ,
    PRIMARY KEY (run_id, attempt, source, symbol, interval),
    CHECK (received = loaded + rejected + not_closed)
);

-- The runs recorded before this migration: their latest attempt, as runs has it.
INSERT INTO run_attempts
SELECT run_id, coalesce(attempts, 1), flow_run_id, started_at, ended_at, status,
       received, loaded, rejected, not_closed, message, pid, host
FROM runs;
INSERT INTO run_series_attempts
SELECT s.run_id, coalesce(r.attempts, 1), s.source, s.symbol, s.interval, s.received, s.loaded,
       s.rejected, s.not_closed, s.new_bars, s.revised_bars, s.removed_bars, s.first_ts, s.last_ts
FROM run_series s JOIN runs r USING (run_id);

-- A long range loads piece by piece. complete: whether the series' last piece of the run
-- loaded; a rerun keeps complete loads and reads on from the stored bars otherwise.
-- run_series is rebuilt rather than altered: DuckDB 1.4 cannot replay from its WAL an
-- ALTER TABLE of a table with a CHECK constraint, so a crash right after would be fatal.
CREATE TABLE run_series_v7 (
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
    complete     BOOLEAN NOT NULL,  -- the series' last piece of the run is loaded
    PRIMARY KEY (run_id, source, symbol, interval),
    CHECK (received = loaded + rejected + not_closed)
);
INSERT INTO run_series_v7 SELECT *, true FROM run_series;
DROP TABLE run_series;
ALTER TABLE run_series_v7 RENAME TO run_series;
