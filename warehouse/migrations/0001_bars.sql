-- Bars, their quarantine, and the record of every run that touched them.

-- One row per closed bar; ts is the bar's open time in UTC.
CREATE TABLE bars (
    source    VARCHAR     NOT NULL,
    symbol    VARCHAR     NOT NULL,
    interval  VARCHAR     NOT NULL,
    ts        TIMESTAMPTZ NOT NULL,
    open      DOUBLE      NOT NULL,
    high      DOUBLE      NOT NULL,
    low       DOUBLE      NOT NULL,
    close     DOUBLE      NOT NULL,
    volume    DOUBLE      NOT NULL,
    run_id    VARCHAR     NOT NULL,  -- the run that last wrote or revised this bar
    loaded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, symbol, interval, ts)
);

-- Rows that failed validation, exactly as received. The same row received again
-- (same series, same raw text) updates its entry rather than adding one.
CREATE TABLE bars_rejected (
    source      VARCHAR     NOT NULL,
    symbol      VARCHAR     NOT NULL,
    interval    VARCHAR     NOT NULL,
    ts          TIMESTAMPTZ,            -- NULL when the timestamp could not be read
    raw         JSON        NOT NULL,   -- the row as the source gave it
    row_hash    VARCHAR     NOT NULL,   -- md5(raw)
    failed      VARCHAR[]   NOT NULL,   -- names of the checks it failed (attnviz.quality.CHECKS)
    run_id      VARCHAR     NOT NULL,
    rejected_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, symbol, interval, row_hash)
);

-- Every flow run. A retry of the same Prefect flow run keeps its run_id and replaces its rows.
CREATE TABLE runs (
    run_id     VARCHAR     PRIMARY KEY,
    flow       VARCHAR     NOT NULL,
    parameters JSON        NOT NULL,
    as_of      TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at   TIMESTAMPTZ,
    status     VARCHAR     NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    received   BIGINT,                 -- totals over run_series; received = loaded + rejected
    loaded     BIGINT,
    rejected   BIGINT,
    message    VARCHAR
);

-- Per run and series: what came in and where it went.
CREATE TABLE run_series (
    run_id       VARCHAR NOT NULL,
    source       VARCHAR NOT NULL,
    symbol       VARCHAR NOT NULL,
    interval     VARCHAR NOT NULL,
    received     BIGINT  NOT NULL,
    loaded       BIGINT  NOT NULL,
    rejected     BIGINT  NOT NULL,
    new_bars     BIGINT  NOT NULL,  -- loaded bars whose key was not in bars before
    revised_bars BIGINT  NOT NULL,  -- loaded bars that replaced a stored bar with other values
    first_ts     TIMESTAMPTZ,
    last_ts      TIMESTAMPTZ,
    PRIMARY KEY (run_id, source, symbol, interval),
    CHECK (received = loaded + rejected)
);

-- Per run, series and Great Expectations check.
CREATE TABLE validation_results (
    run_id           VARCHAR NOT NULL,
    source           VARCHAR NOT NULL,
    symbol           VARCHAR NOT NULL,
    interval         VARCHAR NOT NULL,
    expectation      VARCHAR NOT NULL,
    success          BOOLEAN NOT NULL,
    unexpected_count BIGINT  NOT NULL,
    PRIMARY KEY (run_id, source, symbol, interval, expectation)
);

-- Incremental ingestion starts after the newest stored bar of each series.
CREATE VIEW watermarks AS
SELECT source, symbol, interval, max(ts) AS last_ts, count(*) AS bars
FROM bars
GROUP BY ALL;
