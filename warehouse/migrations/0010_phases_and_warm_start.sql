-- Where a run's time and memory go, and how each model version was trained.

-- One row per phase of a run attempt. A phase's seconds are the summed wall time of its
-- tasks (concurrent tasks, such as fetches, can add up to more than the run's span).
CREATE TABLE run_phases (
    run_id      VARCHAR NOT NULL,
    attempt     INTEGER NOT NULL,
    phase       VARCHAR NOT NULL CHECK (phase IN
                    ('ingest', 'validate', 'train', 'analyse', 'render', 'store', 'backtest')),
    seconds     DOUBLE  NOT NULL,
    tasks       INTEGER NOT NULL,  -- task runs that did work in the phase (cached ones do none)
    peak_rss_mb DOUBLE  NOT NULL,  -- the run's process high-water mark when the phase last ended
    PRIMARY KEY (run_id, attempt, phase)
);

ALTER TABLE runs ADD COLUMN peak_rss_mb DOUBLE;          -- the process high-water mark at its end
ALTER TABLE run_attempts ADD COLUMN peak_rss_mb DOUBLE;

-- A version is trained from scratch ('full') or fine-tuned from the version active before
-- it ('warm', warm_from). full_trained_at is the as-of of the from-scratch training its
-- weights descend from: full retrains are scheduled by it.
ALTER TABLE models ADD COLUMN training VARCHAR DEFAULT 'full';  -- 'full' or 'warm'
ALTER TABLE models ADD COLUMN warm_from INTEGER;
ALTER TABLE models ADD COLUMN training_reason VARCHAR;
ALTER TABLE models ADD COLUMN full_trained_at TIMESTAMPTZ;
UPDATE models SET training_reason = 'trained before warm starts existed',
                  full_trained_at = (SELECT r.as_of FROM runs r WHERE r.run_id = models.run_id);
