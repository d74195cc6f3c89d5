-- Where each trailing stop stands now, so a restarted hot path trails it on from there rather
-- than from the stop it was first sent at (ledger/stop_levels.py).
--
-- One row per trailing order (its command id), overwritten with the newest level: the Exit
-- Manager moves a stop at the broker first and the row follows in the background, coalesced, so
-- the row may lag the broker by the moves of the last moments before a crash; at start-up the
-- broker's own stop wins when it is tighter (hotpath/trailing_restore.py). The row is advice to
-- the hot path about its own orders: the trailing rule it resumes with is read from the signed
-- ledger entry, and a level the rule could not have reached from the recorded best price is
-- ignored.
CREATE TABLE stop_levels (
    command_id text PRIMARY KEY CHECK (length(command_id) BETWEEN 1 AND 128),
    account text NOT NULL CHECK (length(account) BETWEEN 1 AND 64),
    symbol text NOT NULL CHECK (length(symbol) BETWEEN 1 AND 32),
    side text NOT NULL CHECK (side IN ('BUY', 'SELL')),  -- the stop order's side
    stop numeric NOT NULL CHECK (stop > 0 AND stop <> 'NaN'),
    best_price numeric CHECK (best_price > 0 AND best_price <> 'NaN'),  -- best seen since it was sent
    trail_amount numeric CHECK (trail_amount > 0),
    trail_percent numeric CHECK (trail_percent > 0 AND trail_percent < 100),
    tick numeric NOT NULL CHECK (tick > 0),
    bound numeric CHECK (bound > 0),  -- an entry's: how far the stop may move (trading/trailing.py)
    moves integer NOT NULL DEFAULT 0 CHECK (moves >= 0),  -- moves persisted (after coalescing)
    updated_at timestamptz NOT NULL,
    CHECK ((trail_amount IS NULL) <> (trail_percent IS NULL))
);
REVOKE ALL ON stop_levels FROM PUBLIC;
GRANT SELECT ON stop_levels TO floor_reader;
-- The hot path's own group (it alone holds floor_order_writer): nobody else moves a stop.
GRANT INSERT, UPDATE (stop, best_price, bound, moves, updated_at) ON stop_levels TO floor_order_writer;
