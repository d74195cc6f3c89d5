-- An order's state is its order_events rows folded by the order state machine
-- (trading/order_state.py, read through ledger/order_events.py); the database keeps no copy of
-- that rule.
--
-- 0003's order_states view picked each order's row with the highest filled_qty before looking
-- at terminal kinds, so a fill that arrived after a cancel (a real venue can fill an order it
-- has just confirmed cancelled) made the cancelled order look open to start-up recovery and
-- reconciliation. Dropped rather than corrected, so no reader finds a second rule here.
DROP VIEW order_states;
