-- How often each monitor flag is on: per run and series, the share of the evaluation windows
-- in which it is. The thresholds are chosen on the validation windows for a false-alarm rate
-- (5% by default), so a share far above it says the evaluation period differs from them; a
-- flag that is on in nearly every window says nothing.

CREATE VIEW flag_shares AS
SELECT run_id, source, symbol, interval,
       count(*)                        AS windows,
       avg(collapse::DOUBLE)           AS collapse_share,
       avg(regime_change::DOUBLE)      AS regime_change_share,
       avg(head_gone_uniform::DOUBLE)  AS head_gone_uniform_share
FROM attention_window
GROUP BY run_id, source, symbol, interval;
