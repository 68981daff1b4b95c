-- The backtest: what each strategy did window by window, what it earned, and whether it is
-- better than chance. ts is the bar time (UTC open time) of the window's last bar: the
-- decision is taken at that bar's close and filled at the next bar's open.

CREATE TABLE signals (
    run_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL, symbol VARCHAR NOT NULL, interval VARCHAR NOT NULL,
    strategy      VARCHAR  NOT NULL,
    ts            TIMESTAMPTZ NOT NULL,
    signal        TINYINT  NOT NULL CHECK (signal IN (-1, 0, 1)),  -- SHORT, HOLD, LONG
    gate_open     BOOLEAN  NOT NULL,  -- the confidence gate let a trade through (true when ungated)
    confidence    DOUBLE,             -- the confidence the gate read; NULL when ungated
    pred_up_prob  DOUBLE,
    pred_return   DOUBLE,
    pred_vol      DOUBLE,
    position      DOUBLE   NOT NULL,  -- signal x size: the position filled at the next bar's open
    cost          DOUBLE,             -- cost of that fill, a fraction of equity; NULL until filled
    net_return    DOUBLE,             -- the strategy's net return over the next bar; NULL at the end
    PRIMARY KEY (run_id, source, symbol, interval, strategy, ts)
);

CREATE TABLE backtest_strategies (
    run_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL, symbol VARCHAR NOT NULL, interval VARCHAR NOT NULL,
    strategy     VARCHAR NOT NULL,
    role         VARCHAR NOT NULL
                 CHECK (role IN ('buy_and_hold', 'random', 'transformer', 'lstm', 'filtered',
                                 'chapter')),
    threshold    DOUBLE,            -- the confidence gate's threshold, if gated
    chosen       BOOLEAN NOT NULL,  -- the filtered strategy chosen on the validation windows
    significance VARCHAR,           -- against the unfiltered Transformer, in words
    PRIMARY KEY (run_id, source, symbol, interval, strategy)
);

CREATE TABLE backtest_results (
    run_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL, symbol VARCHAR NOT NULL, interval VARCHAR NOT NULL,
    strategy VARCHAR NOT NULL,
    metric   VARCHAR NOT NULL,  -- sharpe, sortino, max_drawdown, ... (README: Backtest)
    value    DOUBLE,
    ci_low   DOUBLE,            -- block-bootstrap interval, where one is computed
    ci_high  DOUBLE,
    PRIMARY KEY (run_id, source, symbol, interval, strategy, metric)
);

-- One row per run, series and strategy: the main metrics side by side, significance in words.
CREATE VIEW strategy_comparison AS
SELECT
    s.run_id, s.source, s.symbol, s.interval, s.strategy, s.role, s.threshold, s.chosen,
    max(r.value) FILTER (WHERE r.metric = 'total_return')      AS total_return,
    max(r.value) FILTER (WHERE r.metric = 'annual_return')     AS annual_return,
    max(r.value) FILTER (WHERE r.metric = 'sharpe')            AS sharpe,
    max(r.ci_low) FILTER (WHERE r.metric = 'sharpe')           AS sharpe_low,
    max(r.ci_high) FILTER (WHERE r.metric = 'sharpe')          AS sharpe_high,
    max(r.value) FILTER (WHERE r.metric = 'sortino')           AS sortino,
    max(r.value) FILTER (WHERE r.metric = 'max_drawdown')      AS max_drawdown,
    max(r.value) FILTER (WHERE r.metric = 'calmar')            AS calmar,
    max(r.value) FILTER (WHERE r.metric = 'hit_rate')          AS hit_rate,
    max(r.value) FILTER (WHERE r.metric = 'trades')            AS trades,
    max(r.value) FILTER (WHERE r.metric = 'exposure')          AS exposure,
    max(r.value) FILTER (WHERE r.metric = 'random_percentile') AS random_percentile,
    s.significance
FROM backtest_strategies s
LEFT JOIN backtest_results r USING (run_id, source, symbol, interval, strategy)
GROUP BY ALL;
