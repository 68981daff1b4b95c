-- A run whose process dies (kill -9, out of memory, a CI timeout, a reboot) cannot close
-- its row. The next run to take the runs lock knows that no run is in progress, so it
-- marks every row still 'running' as 'crashed', with when it noticed. Each row records
-- the process that ran it, to find it in the system's logs (e.g. the OOM killer's).
-- DuckDB cannot alter a CHECK constraint, so runs is rebuilt with the new status; the
-- columns of 0004 and 0005 are kept. Views that join runs (latest_attention_window)
-- bind it by name when queried, so they see the new table.

CREATE TABLE runs_v6 (
    run_id      VARCHAR     PRIMARY KEY,
    flow        VARCHAR     NOT NULL,
    parameters  JSON        NOT NULL,
    as_of       TIMESTAMPTZ NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    ended_at    TIMESTAMPTZ,            -- NULL while running, and when it crashed (unseen)
    status      VARCHAR     NOT NULL
                CHECK (status IN ('running', 'succeeded', 'failed', 'crashed')),
    received    BIGINT,                 -- totals over run_series
    loaded      BIGINT,
    rejected    BIGINT,
    message     VARCHAR,
    flow_run_id VARCHAR,                -- the Prefect flow run that last did this work
    attempts    INTEGER DEFAULT 1,      -- how many times this work was run
    not_closed  BIGINT,
    pid         INTEGER,                -- the process that ran it (NULL before this migration)
    host        VARCHAR,                -- and its machine
    crashed_noticed_at TIMESTAMPTZ      -- when a later run found its process gone
);
INSERT INTO runs_v6 (run_id, flow, parameters, as_of, started_at, ended_at, status,
                     received, loaded, rejected, message, flow_run_id, attempts, not_closed)
SELECT run_id, flow, parameters, as_of, started_at, ended_at, status,
       received, loaded, rejected, message, flow_run_id, attempts, not_closed
FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v6 RENAME TO runs;
