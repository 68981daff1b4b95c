-- The model registry: one row per trained model version.

CREATE TABLE models (
    name              VARCHAR     NOT NULL,  -- what it models: a series label, or pooled labels joined by '+'
    version           INTEGER     NOT NULL,  -- 1, 2, ... per name
    series            VARCHAR[]   NOT NULL,  -- labels of the series it was trained on
    interval          VARCHAR     NOT NULL,
    run_id            VARCHAR     NOT NULL,  -- the run that trained it
    train_start       TIMESTAMPTZ NOT NULL,  -- first and last window end of each split, over all series
    train_end         TIMESTAMPTZ NOT NULL,
    val_start         TIMESTAMPTZ NOT NULL,
    val_end           TIMESTAMPTZ NOT NULL,
    test_start        TIMESTAMPTZ NOT NULL,
    test_end          TIMESTAMPTZ NOT NULL,
    series_ranges     JSON        NOT NULL,  -- per series label: {"train": [start, end], "val": ..., "test": ...}
    windows           JSON        NOT NULL,  -- windows per split
    hyperparameters   JSON        NOT NULL,  -- model, feature and training configs
    metrics           JSON        NOT NULL,  -- test metrics: transformer, lstm, naive, previous_active
    val_loss          DOUBLE      NOT NULL,
    previous_val_loss DOUBLE,                -- the then-active model's loss on these validation windows
    checkpoint        VARCHAR     NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    status            VARCHAR     NOT NULL CHECK (status IN ('active', 'retired', 'rejected')),
    status_reason     VARCHAR     NOT NULL,
    PRIMARY KEY (name, version)
);
