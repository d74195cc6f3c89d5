// The ladder's rows as data, from the top price down, one per tick: what is painted and what the
// test hook rows() returns. Pure: the book, the tape and our orders in; rows out.
import { OPEN } from './states.js';

// Rows from `top` (ticks) down, `count` of them.
// tape: {volume: Map(ticks -> shares this session), last: ticks|null}
// own: Map(ticks -> [{id, side, state, quantity}]) from ownOrders().
export function ladderRows(book, top, count, tape, own) {
  const cum = book.cumulative();
  const rows = new Array(count);
  for (let i = 0; i < count; i++) {
    const t = top - i;
    rows[i] = {
      ticks: t,
      price: book.price(t),
      bid: book.bids.get(t) || 0,
      ask: book.asks.get(t) || 0,
      bidCum: cum.bids.get(t) || 0,
      askCum: cum.asks.get(t) || 0,
      volume: tape.volume.get(t) || 0,
      last: tape.last === t,
      own: own.get(t) || [],
    };
  }
  return rows;
}

// Our open orders of this symbol, by limit price in ticks. `quantity` is what still works at
// the price (ordered less filled). Orders without a limit (market, stop) have no row.
export function ownOrders(orders, symbol, book) {
  const out = new Map();
  if (!orders) return out;
  for (const o of orders.values()) {
    if (o.symbol !== symbol || !OPEN.has(o.state) || o.limitPrice == null) continue;
    let t;
    try {
      t = book.ticks(o.limitPrice);
    } catch {
      continue; // off the grid: the venue would not rest it at any row
    }
    const mine = { id: o.id, side: o.side, state: o.state, quantity: o.quantity - (o.filledQuantity || 0) };
    if (!out.has(t)) out.set(t, []);
    out.get(t).push(mine);
  }
  return out;
}

// Volume at each price of the session, from the trades subscription's TradeTape, in ticks.
export function tapeVolumes(book, volumeAtPrice) {
  const out = new Map();
  for (const { price, volume } of volumeAtPrice) {
    try {
      const t = book.ticks(price);
      out.set(t, (out.get(t) || 0) + Number(volume));
    } catch {
      // a trade off the book's grid (e.g. an odd-priced print) has no row to sit on
    }
  }
  return out;
}
