-- Attention analytics: per timestep, window, feature and position, per head, and the figures.
-- Every row carries the run, the model version it came from and the series; ts is the bar
-- time (UTC open time) of the window's last bar.

CREATE TABLE attention_timestep (
    run_id VARCHAR NOT NULL, model_name VARCHAR NOT NULL, model_version INTEGER NOT NULL,
    source VARCHAR NOT NULL, symbol VARCHAR NOT NULL, interval VARCHAR NOT NULL,
    ts                TIMESTAMPTZ NOT NULL,
    layer             INTEGER NOT NULL,
    head              INTEGER NOT NULL,  -- -1: the head-averaged attention of the layer
    entropy           DOUBLE  NOT NULL,  -- of row q (the predicting query), nats
    norm_entropy      DOUBLE  NOT NULL,  -- entropy / ln T, in [0, 1]
    confidence        DOUBLE  NOT NULL,  -- 1 - norm_entropy
    mean_row_entropy  DOUBLE  NOT NULL,  -- entropy averaged over all T query rows
    expected_distance DOUBLE  NOT NULL,  -- E[q - j] under row q: bars back, on average
    recent_mass       DOUBLE  NOT NULL,  -- share of row q on the last k bars
    pattern           VARCHAR NOT NULL,  -- uniform, local, recent, periodic, event, mixed
    PRIMARY KEY (run_id, source, symbol, interval, ts, layer, head)
);

CREATE TABLE attention_window (
    run_id VARCHAR NOT NULL, model_name VARCHAR NOT NULL, model_version INTEGER NOT NULL,
    source VARCHAR NOT NULL, symbol VARCHAR NOT NULL, interval VARCHAR NOT NULL,
    ts                        TIMESTAMPTZ NOT NULL,
    seed_confidence           DOUBLE    NOT NULL,  -- mean over layers and heads of row-q confidence
    calibrated_confidence     DOUBLE    NOT NULL,  -- its percentile among the training windows
    rollout_top_lags          INTEGER[] NOT NULL,  -- top-k lags by attention rollout, strongest first
    flow_top_lags             INTEGER[] NOT NULL,  -- top-k lags by attention flow
    jsd_prev_window           DOUBLE,              -- rollout row vs the window one bar earlier
    topk_jaccard_prev_window  DOUBLE,
    spearman_prev_window      DOUBLE,
    jsd_prev_model            DOUBLE,              -- rollout row vs the previously active model
    attention_ig_spearman     DOUBLE    NOT NULL,  -- rank agreement of rollout and IG feature scores
    head_gone_uniform         BOOLEAN   NOT NULL,  -- a head uniform here that was not in most training windows
    collapse                  BOOLEAN   NOT NULL,
    regime_change             BOOLEAN   NOT NULL,
    pred_return               DOUBLE    NOT NULL,
    pred_up_prob              DOUBLE    NOT NULL,
    pred_vol                  DOUBLE    NOT NULL,
    next_return               DOUBLE    NOT NULL,  -- realised r(t+1)
    direction                 DOUBLE    NOT NULL,  -- 1 if r(t+1) > 0
    future_vol                DOUBLE    NOT NULL,  -- realised volatility of the next h bars
    PRIMARY KEY (run_id, source, symbol, interval, ts)
);

CREATE TABLE feature_attribution (
    run_id VARCHAR NOT NULL, model_name VARCHAR NOT NULL, model_version INTEGER NOT NULL,
    source VARCHAR NOT NULL, symbol VARCHAR NOT NULL, interval VARCHAR NOT NULL,
    ts      TIMESTAMPTZ NOT NULL,
    feature VARCHAR NOT NULL,
    method  VARCHAR NOT NULL,  -- attention_rollout, attention_last_layer, integrated_gradients
    score   DOUBLE  NOT NULL,  -- share of the window's attribution, sums to 1 per (ts, method)
    rank    INTEGER NOT NULL,  -- 1 = most important
    PRIMARY KEY (run_id, source, symbol, interval, ts, feature, method)
);

CREATE TABLE position_importance (
    run_id VARCHAR NOT NULL, model_name VARCHAR NOT NULL, model_version INTEGER NOT NULL,
    source VARCHAR NOT NULL, symbol VARCHAR NOT NULL, interval VARCHAR NOT NULL,
    ts     TIMESTAMPTZ NOT NULL,
    lag    INTEGER NOT NULL,  -- bars before the window's last bar (0 = the last bar)
    method VARCHAR NOT NULL,  -- attention_rollout, attention_flow, integrated_gradients
    score  DOUBLE  NOT NULL,
    PRIMARY KEY (run_id, source, symbol, interval, ts, lag, method)
);

CREATE TABLE head_summary (
    run_id VARCHAR NOT NULL, model_name VARCHAR NOT NULL, model_version INTEGER NOT NULL,
    source VARCHAR NOT NULL, symbol VARCHAR NOT NULL, interval VARCHAR NOT NULL,
    layer            INTEGER NOT NULL,
    head             INTEGER NOT NULL,
    specialisation   DOUBLE  NOT NULL,  -- the layer's mean pairwise JSD between heads
    dominant_pattern VARCHAR NOT NULL,
    pattern_share    DOUBLE  NOT NULL,  -- share of windows in which the head had that pattern
    mean_confidence  DOUBLE  NOT NULL,
    PRIMARY KEY (run_id, source, symbol, interval, layer, head)
);

CREATE TABLE figures (
    run_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL, symbol VARCHAR NOT NULL, interval VARCHAR NOT NULL,
    kind     VARCHAR NOT NULL,  -- attention_grid, rollout, flow, timeline, attribution, heads
    layer    INTEGER,
    head     INTEGER,
    ts_start TIMESTAMPTZ NOT NULL,
    ts_end   TIMESTAMPTZ NOT NULL,
    path     VARCHAR NOT NULL,
    width    INTEGER NOT NULL,
    height   INTEGER NOT NULL,
    PRIMARY KEY (run_id, source, symbol, interval, kind)
);

-- The windows of the newest run that analysed each series.
CREATE VIEW latest_attention_window AS
SELECT w.*
FROM attention_window w
JOIN (
    SELECT DISTINCT ON (source, symbol, interval) w.source, w.symbol, w.interval, w.run_id
    FROM attention_window w JOIN runs r USING (run_id)
    ORDER BY w.source, w.symbol, w.interval, r.started_at DESC
) newest USING (source, symbol, interval, run_id);

-- Per series and calendar day (UTC), from the newest run.
CREATE VIEW attention_daily AS
SELECT source, symbol, interval, ts::DATE AS day,
       count(*)                          AS windows,
       avg(calibrated_confidence)        AS mean_calibrated_confidence,
       avg(seed_confidence)              AS mean_seed_confidence,
       count(*) FILTER (WHERE collapse)  AS collapse_windows,
       count(*) FILTER (WHERE regime_change) AS regime_changes,
       avg(jsd_prev_window)              AS mean_jsd_prev_window,
       avg(topk_jaccard_prev_window)     AS mean_topk_jaccard_prev_window
FROM latest_attention_window
GROUP BY ALL;
