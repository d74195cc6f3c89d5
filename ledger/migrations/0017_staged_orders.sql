-- Orders a trader staged from the desk (the HUD's ticket or ladder, or stageOrder), waiting for
-- Execute. Staging never trades: the API executes a staged order once, in the session that
-- staged it, by claiming the row (command_id set where it was NULL) before it publishes the
-- signed command; a second Execute finds the row claimed and is refused, so one staged order is
-- never two orders. A claim is released only when nothing was published (the door refused).
--
-- The order's terms are written once: the API's role may set and clear the claim, nothing else,
-- so what a step-up assertion confirmed (the hash of these terms, trading/step_up.py) is what
-- executes.
CREATE TABLE staged_orders (
    id            text PRIMARY KEY,
    trader        text NOT NULL,
    session_id    text NOT NULL,
    account       text NOT NULL,
    symbol        text NOT NULL,
    side          text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    order_type    text NOT NULL CHECK (order_type IN ('MKT', 'LMT', 'STP', 'STP_LMT')),
    quantity      integer NOT NULL CHECK (quantity > 0),
    tif           text NOT NULL CHECK (tif IN ('DAY', 'GTC', 'IOC')),
    limit_price   numeric CHECK (limit_price > 0),
    stop_price    numeric CHECK (stop_price > 0),
    stop_loss     numeric CHECK (stop_loss > 0),
    order_hash    text NOT NULL CHECK (order_hash ~ '^[0-9a-f]{64}$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    command_id    text UNIQUE,
    executed_at   timestamptz,
    CHECK ((command_id IS NULL) = (executed_at IS NULL)),
    CHECK (length(id) <= 64 AND length(trader) <= 128 AND length(session_id) <= 128)
);
CREATE INDEX staged_orders_trader ON staged_orders (trader, created_at DESC);

GRANT SELECT ON staged_orders TO floor_reader;
GRANT SELECT, INSERT ON staged_orders TO floor_web;
GRANT UPDATE (command_id, executed_at) ON staged_orders TO floor_web;
