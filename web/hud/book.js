// The L2 book the ladder draws: price-keyed (integer ticks), merged from the orderBook
// subscription's BookSnapshot and BookDelta. A delta is applied only on the book at its
// previousSequence; anything else is a gap, and the book stays out of sync (unusable for
// trading) until the next snapshot. Pure: no DOM, no network.
import { grid, toTicks, fromTicks, midString, TickError, DEFAULT_TICK_SIZE } from './ticks.js';

export { DEFAULT_TICK_SIZE };

// changedAt keeps the rows that left the book (a press on a row that emptied must still see it
// change) but not for ever: past this many entries the oldest of those are forgotten. A
// forgotten row reads version 0, which only makes a pending click on it fail, never pass.
const MAX_CHANGED = 4096;

// What apply() did with an update.
export const APPLIED = 'applied';
export const GAP = 'gap';
export const INVALID = 'invalid';

export class Book {
  constructor(symbol, tickSize = DEFAULT_TICK_SIZE) {
    this.symbol = symbol;
    this.grid = grid(tickSize);
    this.sequence = null; // the sequence of the state held; null before the first snapshot
    this.synced = false; // false before the first snapshot and after a gap
    this.bids = new Map(); // ticks -> size
    this.asks = new Map();
    this.problem = null; // why the book is out of sync: a sentence for the trader
    this.changedAt = new Map(); // ticks -> the sequence that last changed that price's row
    this._best = null;
  }

  // One update of the subscription (its __typename tells which). Returns {result, detail}.
  apply(update) {
    if (update.__typename === 'BookSnapshot') return this.snapshot(update);
    return this.delta(update);
  }

  snapshot(s) {
    // Everything is read on the snapshot's grid before anything is replaced: a snapshot that
    // fails leaves the book it found (grid, levels) as it was, only out of sync.
    let g = this.grid;
    let bids;
    let asks;
    try {
      if (s.tickSize) g = grid(s.tickSize);
      bids = this._levels(s.bids, false, g);
      asks = this._levels(s.asks, false, g);
    } catch (err) {
      return this._invalid(err);
    }
    this.grid = g;
    this._markChanged(this.bids, new Map(bids), s.sequence);
    this._markChanged(this.asks, new Map(asks), s.sequence);
    this.bids = new Map(bids);
    this.asks = new Map(asks);
    this.sequence = s.sequence;
    this.synced = true;
    this.problem = null;
    this._best = null;
    this._prune();
    return { result: APPLIED };
  }

  delta(d) {
    if (!this.synced) return { result: GAP, detail: this.problem || 'no snapshot yet' };
    if (d.previousSequence !== this.sequence) {
      this.synced = false;
      this.problem = `sequence gap: the book is at ${this.sequence}, the update follows ${d.previousSequence}`;
      return { result: GAP, detail: this.problem };
    }
    let bids;
    let asks;
    try {
      bids = this._levels(d.bids, true);
      asks = this._levels(d.asks, true);
    } catch (err) {
      return this._invalid(err);
    }
    for (const [t, size] of bids) {
      size === 0 ? this.bids.delete(t) : this.bids.set(t, size);
      this.changedAt.set(t, d.sequence);
    }
    for (const [t, size] of asks) {
      size === 0 ? this.asks.delete(t) : this.asks.set(t, size);
      this.changedAt.set(t, d.sequence);
    }
    this.sequence = d.sequence;
    this._best = null;
    this._prune();
    return { result: APPLIED };
  }

  // Called by the owner when it resubscribes for a fresh snapshot.
  invalidate(reason) {
    this.synced = false;
    this.problem = reason;
  }

  // The sequence that last changed the row at `ticks` (0: never seen changing): a click is
  // honoured only if this is the same at pointer-up as at pointer-down.
  rowVersion(ticks) {
    return this.changedAt.get(ticks) || 0;
  }

  bestBid() {
    return this._bests().bid;
  }

  bestAsk() {
    return this._bests().ask;
  }

  // {bid, ask} as decimal strings (null: that side is empty), for the touch topic.
  touch() {
    const { bid, ask } = this._bests();
    return { bid: bid === null ? null : fromTicks(bid, this.grid), ask: ask === null ? null : fromTicks(ask, this.grid) };
  }

  // The mid as an exact decimal string (a half tick gets one more decimal); null unless both sides.
  mid() {
    const { bid, ask } = this._bests();
    return bid === null || ask === null ? null : midString(bid, ask, this.grid);
  }

  // The tick row the ladder centres on: the mid rounded down, or the one side there is.
  centreTicks() {
    const { bid, ask } = this._bests();
    if (bid !== null && ask !== null) return Math.floor((bid + ask) / 2);
    return bid !== null ? bid : ask;
  }

  spreadTicks() {
    const { bid, ask } = this._bests();
    return bid === null || ask === null ? null : ask - bid;
  }

  // Cumulative depth from the touch out: Map(ticks -> shares at that price or better).
  cumulative() {
    return { bids: cumulate(this.bids, true), asks: cumulate(this.asks, false) };
  }

  price(ticks) {
    return fromTicks(ticks, this.grid);
  }

  ticks(price) {
    return toTicks(price, this.grid);
  }

  _bests() {
    if (this._best === null) {
      let bid = null;
      let ask = null;
      for (const t of this.bids.keys()) if (bid === null || t > bid) bid = t;
      for (const t of this.asks.keys()) if (ask === null || t < ask) ask = t;
      this._best = { bid, ask };
    }
    return this._best;
  }

  _levels(levels, allowZero = false, g = this.grid) {
    return levels.map(({ price, size }) => {
      if (!Number.isSafeInteger(size) || size < 0 || (size === 0 && !allowZero)) {
        throw new TickError(`size at ${price} must be a ${allowZero ? 'non-negative' : 'positive'} whole number, got ${size}`);
      }
      return [toTicks(price, g), size];
    });
  }

  _markChanged(before, after, sequence) {
    for (const [t, size] of after) if (before.get(t) !== size) this.changedAt.set(t, sequence);
    for (const t of before.keys()) if (!after.has(t)) this.changedAt.set(t, sequence);
  }

  // Forgets the oldest rows no longer in the book once changedAt is past MAX_CHANGED.
  _prune() {
    if (this.changedAt.size <= MAX_CHANGED) return;
    const gone = [...this.changedAt].filter(([t]) => !this.bids.has(t) && !this.asks.has(t));
    gone.sort((a, b) => a[1] - b[1]);
    for (const [t] of gone.slice(0, Math.max(0, this.changedAt.size - MAX_CHANGED / 2))) this.changedAt.delete(t);
  }

  _invalid(err) {
    this.synced = false;
    this.problem = `unreadable book update (${err.message})`;
    return { result: INVALID, detail: this.problem };
  }
}

function cumulate(side, highFirst) {
  const prices = [...side.keys()].sort((a, b) => (highFirst ? b - a : a - b));
  const out = new Map();
  let sum = 0;
  for (const t of prices) {
    sum += side.get(t);
    out.set(t, sum);
  }
  return out;
}
