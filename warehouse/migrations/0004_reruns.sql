-- Reruns replace their own work. A run is keyed by its logical work (flow, parameters,
-- as-of), not by the Prefect flow run that did it; models record when, in logical time,
-- they were active, so a past as-of can be rebuilt with the model active then.

ALTER TABLE runs ADD COLUMN flow_run_id VARCHAR;             -- the Prefect flow run that last did this work
ALTER TABLE runs ADD COLUMN attempts INTEGER DEFAULT 1;           -- how many times this work was run
UPDATE runs SET flow_run_id = run_id;

ALTER TABLE models ADD COLUMN active_from TIMESTAMPTZ;       -- as_of of the run that made it active
ALTER TABLE models ADD COLUMN active_until TIMESTAMPTZ;      -- as_of of the run that retired it
ALTER TABLE models ADD COLUMN retired_by VARCHAR;            -- run_id of that run

UPDATE models SET active_from = r.as_of
FROM runs r
WHERE r.run_id = models.run_id AND models.status <> 'rejected';

UPDATE models SET active_until = after.active_from, retired_by = after.run_id
FROM (
    SELECT name, version,
           lead(active_from) OVER by_version AS active_from,
           lead(run_id) OVER by_version AS run_id
    FROM models
    WHERE status <> 'rejected'
    WINDOW by_version AS (PARTITION BY name ORDER BY version)
) after
WHERE models.status = 'retired' AND after.name = models.name AND after.version = models.version;

-- The newest run is the one standing at the latest as-of: a backfill of a past day
-- does not hide the nightly runs after it.
CREATE OR REPLACE VIEW latest_attention_window AS
SELECT w.*
FROM attention_window w
JOIN (
    SELECT DISTINCT ON (source, symbol, interval) w.source, w.symbol, w.interval, w.run_id
    FROM attention_window w JOIN runs r USING (run_id)
    ORDER BY w.source, w.symbol, w.interval, r.as_of DESC, r.started_at DESC
) newest USING (source, symbol, interval, run_id);
