-- Exact attention flow and Integrated Gradients, the costliest measures, are computed for
-- the newest windows of an evaluation period and a fixed sample of the older ones
-- (attnviz.analysis.AnalysisConfig: explain_newest, explain_every); each window row says
-- whether it has them. A window without flow has flow_top_lags = [] and no attention_flow
-- rows in position_importance; one without Integrated Gradients has a NaN
-- attention_ig_spearman and no integrated_gradients rows in position_importance or
-- feature_attribution. The rows written before this migration are read the same way.
-- DuckDB adds no column with a constraint and sets none in the transaction that filled
-- it, so attention_window is rebuilt with the two columns beside the ones they describe.
-- Views that read attention_window bind it by name when queried, so they see the new table.

CREATE TABLE attention_window_v11 (
    run_id VARCHAR NOT NULL, model_name VARCHAR NOT NULL, model_version INTEGER NOT NULL,
    source VARCHAR NOT NULL, symbol VARCHAR NOT NULL, interval VARCHAR NOT NULL,
    ts                        TIMESTAMPTZ NOT NULL,
    seed_confidence           DOUBLE    NOT NULL,  -- mean over layers and heads of row-q confidence
    calibrated_confidence     DOUBLE    NOT NULL,  -- its percentile among the validation windows
    rollout_top_lags          INTEGER[] NOT NULL,  -- top-k lags by attention rollout, strongest first
    flow_top_lags             INTEGER[] NOT NULL,  -- top-k lags by attention flow; [] without flow
    has_attention_flow        BOOLEAN   NOT NULL,  -- attention flow was computed for this window
    jsd_prev_window           DOUBLE,              -- rollout row vs the window one bar earlier
    topk_jaccard_prev_window  DOUBLE,
    spearman_prev_window      DOUBLE,
    jsd_prev_model            DOUBLE,              -- rollout row vs the previously active model
    attention_ig_spearman     DOUBLE    NOT NULL,  -- rank agreement of rollout and IG feature scores; NaN without IG
    has_integrated_gradients  BOOLEAN   NOT NULL,  -- Integrated Gradients were computed for this window
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
INSERT INTO attention_window_v11 BY NAME
SELECT *,
       len(flow_top_lags) > 0           AS has_attention_flow,
       NOT isnan(attention_ig_spearman) AS has_integrated_gradients
FROM attention_window;
DROP TABLE attention_window;
ALTER TABLE attention_window_v11 RENAME TO attention_window;
