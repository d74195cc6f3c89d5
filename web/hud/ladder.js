// The depth ladder: one row per tick around the mid, drawn on a canvas from the merged book
// (book.js) once per animation frame when something changed, never once per message.
// Click-to-trade publishes `ladder-click` (the ticket stages it; nothing here sends an order),
// and is off while the feed is not live: disconnected, a sequence gap, or stale.
import * as store from './store.js';
import { gql, live, onConnection, stamp } from './gql.js';
import { Book, APPLIED } from './book.js';
import { ladderRows, ownOrders, tapeVolumes } from './ladder_rows.js';
import { columns, rowCount, cellAt, cellCentre, topFor, offCentre, ROW_HEIGHT } from './ladder_layout.js';
import { paintLadder, palette, fitCanvas } from './ladder_paint.js';
import { requestPaint, afterPaint } from './frame_loop.js';
import * as latency from './latency.js';

// The API's most levels a side (api/graphql/subscriptions.py): 100 rows of book, more than any
// screen shows; the feed carries what the broker publishes (10 a side by default).
export const DEPTH = 50;

// No book message for this long means the feed is stale. A liquid stock's top of book changes
// many times a second and the paper venue's about 20 times; 5 s of silence is far outside that,
// yet short enough that nobody clicks on a price more than a few seconds old. (The HUD has no
// session clock: a closed market's silent book shows stale too, and trading it by click is off.)
export const STALE_AFTER_MS = 5000;

const BOOK = `subscription LadderBook($symbol: String!, $depth: Int!) {
  orderBook(symbol: $symbol, depth: $depth) {
    __typename
    ... on BookSnapshot { sequence venueTs tickSize bids { price size } asks { price size } }
    ... on BookDelta { sequence previousSequence venueTs bids { price size } asks { price size } }
  }
}`;

// `complete` (false: the tape missed trades, so volumes count less than was traded) is asked
// for only where the floor's schema has it.
const tradesQuery = (complete) => `subscription LadderTape($symbol: String!) {
  trades(symbol: $symbol) {
    __typename
    ... on TradeTape { last { price } sessionVolume volumeAtPrice { price volume }${complete ? ' complete' : ''} }
    ... on Trade { price size sessionVolume${complete ? ' complete' : ''} }
  }
}`;
const TAPE_FIELDS = 'query { __type(name: "TradeTape") { fields { name } } }';
let tradesText = null;

async function tradesSubscription() {
  if (tradesText === null) {
    let complete = false;
    try {
      const type = (await gql(TAPE_FIELDS)).__type;
      complete = Boolean(type && type.fields.some((f) => f.name === 'complete'));
    } catch {
      // no introspection: the tape is shown without its completeness
    }
    tradesText = tradesQuery(complete);
  }
  return tradesText;
}

const RESYNC_PAUSE_MS = 1000;

const INCOMPLETE_TAPE = 'VOL*: the tape missed trades this session; volumes count less than was traded';

const REASON_TEXT = {
  disconnected: 'the connection to the floor is down; reconnecting',
  gap: 'the book missed an update; resyncing',
  stale: `no book update for ${STALE_AFTER_MS / 1000} s; prices may be old`,
};

export function mountLadder(pane) {
  const canvas = pane.querySelector('#ladder');
  const ctx = canvas.getContext('2d', { alpha: false });
  const banner = document.getElementById('stale-banner');
  const stats = document.getElementById('ladder-stats');
  const note = document.createElement('span');
  note.id = 'ladder-note';
  note.setAttribute('role', 'status');
  stats.after(note);

  const colours = palette();
  let size = { width: 0, height: 0, scaleX: 1, scaleY: 1 };
  let symbol = null;
  let book = new Book('');
  let bookGen = 0;
  let stopBook = () => {};
  let stopTape = () => {};
  let tapeRetry = null;
  let bookRetry = null;
  let lastResync = -Infinity;
  let resyncPending = false;
  let tape = emptyTape();
  let own = new Map();
  let ws = 'connecting';
  let syncReason = 'stale'; // why the book is not in sync: 'stale' (no snapshot yet), 'gap', 'disconnected'
  let syncDetail = 'waiting for the first book';
  let lastMessageAt = performance.now();
  let feed = null;
  let top = null; // the tick at the top row
  let hovering = false;
  let painting = true;
  let pendingStamps = [];
  let painted = { rows: [], top: null, sequence: null };
  let press = null;
  let barText = '';
  let noteTimer = null;

  function emptyTape() {
    return { volume: new Map(), last: null, sessionVolume: null, lastPrice: null, complete: true };
  }

  // --- the feeds ------------------------------------------------------------------------------

  function startBook() {
    const gen = ++bookGen;
    clearTimeout(bookRetry);
    resyncPending = false;
    stopBook = live(BOOK, { symbol, depth: DEPTH }, (data) => onBook(gen, data.orderBook), {
      onError: (err) => {
        if (gen !== bookGen) return;
        // The hub ended the stream (resync.*) or refused it (e.g. an unknown symbol): the book
        // is not live; subscribe again for a fresh snapshot, after a breath.
        outOfSync('gap', err.message);
        scheduleResync(RESYNC_PAUSE_MS);
      },
    });
  }

  function restartBook() {
    resyncPending = false;
    lastResync = performance.now();
    stopBook();
    startBook();
  }

  // Subscribe again for a snapshot: at once, unless the last resync was less than a second ago
  // (a feed that gaps on every message must not become a resubscribe loop). Messages that
  // arrive meanwhile cannot apply and do not move the plan.
  function scheduleResync(atLeast = 0) {
    if (resyncPending) return;
    resyncPending = true;
    const wait = Math.max(atLeast, lastResync + RESYNC_PAUSE_MS - performance.now());
    if (wait <= 0) restartBook();
    else bookRetry = setTimeout(restartBook, wait);
  }

  function onBook(gen, update) {
    if (gen !== bookGen) return; // a message of a subscription already left
    const received = stamp();
    lastMessageAt = performance.now();
    const { result, detail } = book.apply(update);
    if (result !== APPLIED) {
      if (resyncPending) return; // out of sync already, a snapshot is on its way
      latency.gap();
      outOfSync('gap', detail);
      scheduleResync();
      return;
    }
    // The venue's time of the newest update in the message -> its arrival here (same host
    // clock in the bench; across machines it also holds their clock offset).
    if (update.venueTs) latency.venueSample(performance.timeOrigin + received - Date.parse(update.venueTs));
    if (update.__typename === 'BookSnapshot') {
      syncReason = null;
      syncDetail = null;
      if (!tape.started) startTape();
    }
    store.publish('touch', { symbol, ...book.touch(), sequence: book.sequence, tickSize: book.grid.tickSize });
    updateFeed();
    if (painting) {
      if (!document.hidden) pendingStamps.push(received);
      requestPaint(paint);
    } else {
      latency.sample(performance.now() - received);
    }
  }

  function outOfSync(reason, detail) {
    syncReason = reason;
    syncDetail = detail;
    book.invalidate(detail);
    updateFeed();
    requestPaint(paint);
  }

  // Trades give the last price and volume at price. Until the floor offers the subscription,
  // or while it fails, the ladder works without them (those columns stay empty).
  function startTape() {
    clearTimeout(tapeRetry);
    tape = emptyTape();
    tape.started = true;
    const mine = tape;
    const tapeSymbol = symbol;
    tradesSubscription().then((query) => {
      if (mine !== tape) return; // the symbol moved on meanwhile
      stopTape = live(query, { symbol: tapeSymbol }, (data) => onTrade(mine, data.trades), {
        onError: (err) => {
          if (mine !== tape) return;
          console.info('ladder: no trades feed:', err.message);
          tapeRetry = setTimeout(() => {
            stopTape();
            startTape();
          }, 15_000);
        },
      });
    });
  }

  function onTrade(mine, u) {
    if (mine !== tape) return;
    if (u.__typename === 'TradeTape') {
      mine.volume = tapeVolumes(book, u.volumeAtPrice);
      mine.lastPrice = u.last ? u.last.price : null;
      mine.complete = u.complete !== false; // a snapshot replaces everything, its verdict too
    } else {
      // Each trade carries the tape's verdict after it: a hole closes when its trades arrive late.
      mine.complete = u.complete !== false;
      mine.lastPrice = u.price;
      try {
        const t = book.ticks(u.price);
        mine.volume.set(t, (mine.volume.get(t) || 0) + u.size);
      } catch {
        // off the grid: counted in the session volume only
      }
    }
    mine.sessionVolume = Number(u.sessionVolume);
    try {
      mine.last = mine.lastPrice === null ? null : book.ticks(mine.lastPrice);
    } catch {
      mine.last = null;
    }
    requestPaint(paint);
  }

  function switchSymbol(next) {
    if (!next || next === symbol) return;
    stopBook();
    stopTape();
    clearTimeout(tapeRetry);
    symbol = next;
    book = new Book(symbol);
    tape = emptyTape();
    own = ownOrders(store.latest('orders'), symbol, book);
    top = null;
    syncReason = 'stale';
    syncDetail = 'waiting for the first book';
    lastMessageAt = performance.now();
    startBook();
    updateFeed();
    requestPaint(paint);
  }

  // --- feed health ----------------------------------------------------------------------------

  function feedReason(now) {
    if (ws !== 'open') return 'disconnected';
    if (!book.synced) return syncReason || 'gap';
    if (now - lastMessageAt > STALE_AFTER_MS) return 'stale';
    return null;
  }

  function updateFeed() {
    const reason = feedReason(performance.now());
    if (feed && feed.reason === reason && feed.symbol === symbol) return;
    feed = { symbol, ok: reason === null, reason, since: new Date().toISOString() };
    store.publish('feed', feed);
    banner.hidden = feed.ok;
    banner.dataset.reason = reason || '';
    if (reason) {
      const detail = reason !== 'disconnected' && syncDetail ? ` (${syncDetail})` : '';
      banner.textContent = `Click-to-trade off: ${REASON_TEXT[reason]}${detail}.`;
    } else {
      banner.textContent = '';
    }
    requestPaint(paint);
  }

  // --- painting -------------------------------------------------------------------------------

  function paint() {
    if (!painting || !size.width) return;
    // Not every browser reports a new devicePixelRatio as a resize (emulated screens do not).
    if (window.devicePixelRatio !== size.ratio) size = fitCanvas(canvas, null);
    const n = rowCount(size.height);
    const centre = book.centreTicks();
    if (centre !== null && (top === null || (!hovering && offCentre(top, n, centre)))) top = topFor(centre, n);
    const stamps = pendingStamps;
    pendingStamps = [];
    if (top === null) {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = colours.bg;
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      return;
    }
    const rows = ladderRows(book, top, n, tape, own);
    const bid = book.bestBid();
    const ask = book.bestAsk();
    paintLadder(ctx, rows, {
      ...size,
      bestBid: bid,
      bestAsk: ask,
      midTicks2: bid !== null && ask !== null ? bid + ask : null,
      synced: book.synced,
      tapeComplete: tape.complete,
    }, colours);
    painted = { rows, top, sequence: book.sequence };
    updateBar(bid, ask);
    if (stamps.length) {
      afterPaint((t) => {
        for (const s of stamps) latency.sample(t - s);
      });
    }
  }

  function updateBar(bid, ask) {
    const parts = [];
    parts.push(`BID ${bid === null ? '—' : `${book.price(bid)}×${book.bids.get(bid)}`}`);
    parts.push(`ASK ${ask === null ? '—' : `${book.price(ask)}×${book.asks.get(ask)}`}`);
    const spread = book.spreadTicks();
    if (spread !== null) parts.push(`SPR ${spread}t`, `MID ${book.mid()}`);
    if (tape.lastPrice !== null) parts.push(`LAST ${tape.lastPrice}`);
    if (tape.sessionVolume !== null) parts.push(`${tape.complete ? 'VOL' : 'VOL*'} ${tape.sessionVolume.toLocaleString('en-US')}`);
    const text = parts.join('  ');
    if (text !== barText) {
      barText = text;
      stats.textContent = text;
      stats.title = tape.complete ? '' : INCOMPLETE_TAPE;
      canvas.title = tape.complete ? '' : INCOMPLETE_TAPE;
    }
  }

  function resize(entry) {
    const box = entry && entry.devicePixelContentBoxSize && entry.devicePixelContentBoxSize[0];
    size = fitCanvas(canvas, box ? { width: box.inlineSize, height: box.blockSize } : null);
    if (!hovering) top = null; // re-centre for the new number of rows
    requestPaint(paint);
  }

  function recentre() {
    const centre = book.centreTicks();
    if (centre !== null) top = topFor(centre, rowCount(size.height));
    requestPaint(paint);
  }

  // --- click-to-trade -------------------------------------------------------------------------

  function cellOf(e) {
    const rect = canvas.getBoundingClientRect();
    if (painted.top === null) return null;
    const cell = cellAt(columns(size.width), painted.rows.length, e.clientX - rect.left, e.clientY - rect.top);
    if (!cell || !cell.column.side) return null;
    return { ticks: painted.top - cell.row, side: cell.column.side };
  }

  function say(text) {
    note.textContent = text;
    clearTimeout(noteTimer);
    noteTimer = setTimeout(() => (note.textContent = ''), 4000);
  }

  function crossing(cell) {
    const bid = book.bestBid();
    const ask = book.bestAsk();
    if (cell.side === 'bid' && ask !== null && cell.ticks >= ask) return 'would cross the ask';
    if (cell.side === 'ask' && bid !== null && cell.ticks <= bid) return 'would cross the bid';
    return null;
  }

  canvas.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    const cell = cellOf(e);
    press = cell && { ...cell, version: book.rowVersion(cell.ticks) };
  });

  canvas.addEventListener('pointerup', (e) => {
    if (e.button !== 0 || !press) return;
    const down = press;
    press = null;
    const cell = cellOf(e);
    if (!cell || cell.ticks !== down.ticks || cell.side !== down.side) return; // dragged off: no click
    const price = book.price(cell.ticks);
    // The feed's health now, not the last 500 ms sample: a click must not pass on a book that
    // went silent since.
    const reason = feedReason(performance.now());
    if (reason) {
      updateFeed();
      say(`Ignored: click-to-trade is off (${reason})`);
      return;
    }
    if (book.rowVersion(cell.ticks) !== down.version) {
      say(`Ignored: ${price} changed while the button was down`);
      return;
    }
    // The column says the side, the touch now says whether that is still a resting order: a
    // bid click at or above the ask (or an ask click at or below the bid) would trade at once.
    const refusal = crossing(cell);
    if (refusal) {
      say(`Refused: ${price} ${refusal}: use the ticket`);
      return;
    }
    const side = cell.side === 'bid' ? 'BUY' : 'SELL';
    store.publish('ladder-click', { symbol, side, price });
    say(`${side} LMT ${price} → ticket`);
  });

  // Any pointer movement over the canvas counts as hovering (enter alone can be missed when the
  // canvas appears under a pointer that has not moved since).
  for (const type of ['pointerenter', 'pointerover', 'pointermove']) canvas.addEventListener(type, () => (hovering = true));
  canvas.addEventListener('pointerleave', () => {
    hovering = false;
    press = null;
    requestPaint(paint); // auto-centre catches up now the pointer is off the prices
  });
  canvas.addEventListener(
    'wheel',
    (e) => {
      if (top === null) return;
      e.preventDefault();
      const rows = Math.round(e.deltaY / ROW_HEIGHT) || Math.sign(e.deltaY);
      top -= rows; // wheel down: lower prices come into view
      requestPaint(paint);
    },
    { passive: false },
  );
  document.getElementById('recentre').addEventListener('click', recentre);
  latency.registerKey('C', 'Re-centre the ladder on the mid', recentre);

  // --- wiring ---------------------------------------------------------------------------------

  // Observing the device-pixel box also reports a change of devicePixelRatio (a window dragged
  // to another screen, zoom), not only of the CSS size.
  const resizes = new ResizeObserver(([entry]) => resize(entry));
  try {
    resizes.observe(canvas, { box: 'device-pixel-content-box' });
  } catch {
    resizes.observe(canvas);
  }
  onConnection(({ state }) => {
    ws = state;
    if (state !== 'open' && book.synced) {
      // graphql-ws subscribes again on reconnect and the first message is a fresh snapshot;
      // until then the book held is no price to trade on.
      outOfSync('disconnected', 'waiting for a fresh book after reconnecting');
    }
    updateFeed();
  });
  store.on('orders', (orders) => {
    own = ownOrders(orders, symbol, book);
    requestPaint(paint);
  });
  store.on('symbol', switchSymbol);
  setInterval(updateFeed, 500); // staleness is the absence of messages: look for it on a clock

  window.hud.ladder = {
    rows: () => painted.rows.map(({ ticks, ...row }) => ({ ...row, own: row.own.map((o) => ({ ...o })) })),
    sequence: () => painted.sequence,
    cellCenter: (price, side) => {
      let ticks;
      try {
        ticks = book.ticks(price);
      } catch {
        return null;
      }
      const row = painted.top === null ? -1 : painted.top - ticks;
      if (row < 0 || row >= painted.rows.length) return null;
      const c = cellCentre(columns(size.width), row, side);
      const rect = canvas.getBoundingClientRect();
      return { x: rect.left + window.scrollX + c.x, y: rect.top + window.scrollY + c.y };
    },
    recentre,
    // The cell held down now: its row's change version then and now (they differ: the release
    // will be ignored).
    pressed: () =>
      press && { price: book.price(press.ticks), side: press.side, version: press.version, now: book.rowVersion(press.ticks) },
    // Feeds one update through the same path as the subscription's (a test injects a gap).
    inject: (update) => onBook(bookGen, update),
    feed: () => feed,
    symbol: () => symbol,
    tapeComplete: () => tape.complete,
    // The merged book now (painted or not): {bids: [[price, size]], asks}.
    levels: () => ({
      bids: [...book.bids].map(([t, size]) => [book.price(t), size]),
      asks: [...book.asks].map(([t, size]) => [book.price(t), size]),
    }),
    hovering: () => hovering,
  };
  window.hud.paint = (enabled) => {
    painting = Boolean(enabled);
    pendingStamps = [];
    latency.setMode(painting ? 'paint' : 'handler');
    if (painting) requestPaint(paint);
  };
}
