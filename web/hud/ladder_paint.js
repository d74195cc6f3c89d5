// Draws the ladder's rows on its canvas: sizes as bars, cumulative depth, the touch and the
// spread, the mid, the last trade, volume at price, and our open orders in their state colours.
// Called once per animation frame at most, only when something changed.
import { columns, rowTop, ROW_HEIGHT, HEADER_HEIGHT } from './ladder_layout.js';
import { stateColour } from './states.js';

const FONT = '11px ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace';
const BOLD = `600 ${FONT}`;

// The colours, read once from hud.css's custom properties (reading styles every frame is slow).
export function palette() {
  const css = getComputedStyle(document.documentElement);
  const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  const states = {};
  for (const s of ['pending', 'working', 'partially-filled', 'cancel-pending', 'staged']) states[s] = stateColour(s);
  return {
    bg: v('--bg', '#0d0f12'),
    panel: v('--panel', '#15181d'),
    fg: v('--fg', '#e6e8eb'),
    dim: v('--dim', '#8b9099'),
    grid: v('--grid', '#262a31'),
    bid: v('--bid', '#2f7dff'),
    ask: v('--ask', '#ff4d4f'),
    warn: v('--warn', '#ffb000'),
    accent: v('--accent', '#00c2ff'),
    states,
  };
}

// Sizes the canvas's backing store to its box in device pixels, so lines and text are crisp on
// any devicePixelRatio. Returns the CSS size.
export function fitCanvas(canvas, devicePixels) {
  const rect = canvas.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const w = devicePixels ? devicePixels.width : Math.round(rect.width * dpr);
  const h = devicePixels ? devicePixels.height : Math.round(rect.height * dpr);
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  return { width: rect.width, height: rect.height, ratio: dpr, scaleX: w / rect.width || dpr, scaleY: h / rect.height || dpr };
}

// Paints `rows` (ladder_rows.js) onto `ctx`. view: {width, height, scaleX, scaleY, bestBid,
// bestAsk, midTicks2 (twice the mid in ticks, or null), synced}.
export function paintLadder(ctx, rows, view, colours) {
  const { width, height } = view;
  const cols = columns(width);
  const col = Object.fromEntries(cols.map((c) => [c.key, c]));
  ctx.setTransform(view.scaleX, 0, 0, view.scaleY, 0, 0);
  ctx.fillStyle = colours.bg;
  ctx.fillRect(0, 0, width, height);
  ctx.textBaseline = 'middle';

  // Bars scale to the largest size on screen, so the deepest visible level fills its cell.
  let maxSize = 1;
  let maxCum = 1;
  let maxVol = 1;
  for (const r of rows) {
    maxSize = Math.max(maxSize, r.bid, r.ask);
    maxCum = Math.max(maxCum, r.bidCum, r.askCum);
    maxVol = Math.max(maxVol, r.volume);
  }

  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    const y = rowTop(i);
    const mid = y + ROW_HEIGHT / 2;
    const inSpread = view.bestBid !== null && view.bestAsk !== null && r.ticks > view.bestBid && r.ticks < view.bestAsk;
    if (inSpread) band(ctx, 0, y, width, colours.panel);
    else if (i % 2) band(ctx, 0, y, width, 'rgba(255,255,255,0.025)');

    // Cumulative depth: a faint bar behind the number.
    if (r.bidCum) {
      bar(ctx, col.bidCum, y, r.bidCum / maxCum, colours.bid, 0.18, true);
      text(ctx, compact(r.bidCum), col.bidCum, mid, colours.dim, 'right');
    }
    if (r.askCum) {
      bar(ctx, col.askCum, y, r.askCum / maxCum, colours.ask, 0.18, false);
      text(ctx, compact(r.askCum), col.askCum, mid, colours.dim, 'left');
    }
    if (r.bid) {
      bar(ctx, col.bid, y, r.bid / maxSize, colours.bid, r.ticks === view.bestBid ? 0.75 : 0.45, true);
      text(ctx, String(r.bid), col.bid, mid, colours.fg, 'right', r.ticks === view.bestBid);
    }
    if (r.ask) {
      bar(ctx, col.ask, y, r.ask / maxSize, colours.ask, r.ticks === view.bestAsk ? 0.75 : 0.45, false);
      text(ctx, String(r.ask), col.ask, mid, colours.fg, 'left', r.ticks === view.bestAsk);
    }
    if (r.volume) {
      bar(ctx, col.volume, y, r.volume / maxVol, colours.dim, 0.25, false);
      text(ctx, compact(r.volume), col.volume, mid, colours.dim, 'left');
    }

    // The price; the last trade's row framed.
    const touch = r.ticks === view.bestBid ? colours.bid : r.ticks === view.bestAsk ? colours.ask : null;
    text(ctx, r.price, col.price, mid, touch || (r.bid || r.ask ? colours.fg : colours.dim), 'center', touch !== null);
    if (r.last) {
      ctx.strokeStyle = colours.warn;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(col.price.x + 1.75, y + 1.75, col.price.w - 3.5, ROW_HEIGHT - 3.5);
    }

    // Our orders: a chip per side in the state's colour with the working quantity.
    const buys = r.own.filter((o) => o.side === 'BUY');
    const sells = r.own.filter((o) => o.side !== 'BUY');
    if (buys.length) chip(ctx, col.buys, y, buys, colours);
    if (sells.length) chip(ctx, col.sells, y, sells, colours);
  }

  // The mid: a line between the two rows it falls between (or through the row it sits on).
  if (view.midTicks2 !== null && rows.length) {
    const index = (2 * rows[0].ticks - view.midTicks2) / 2; // rows from the top, may be x.5
    const y = rowTop(index) + ROW_HEIGHT / 2;
    if (y > HEADER_HEIGHT && y < height) {
      ctx.strokeStyle = colours.accent;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(col.bid.x, Math.round(y) + 0.5);
      ctx.lineTo(col.ask.x + col.ask.w, Math.round(y) + 0.5);
      ctx.stroke();
    }
  }

  // Column rules and the header.
  ctx.fillStyle = colours.grid;
  for (const c of cols.slice(1)) ctx.fillRect(c.x, 0, 1, height);
  ctx.fillStyle = colours.panel;
  ctx.fillRect(0, 0, width, HEADER_HEIGHT);
  ctx.fillStyle = colours.grid;
  ctx.fillRect(0, HEADER_HEIGHT - 1, width, 1);
  // VOL* (dimmed, as the column is): the tape missed trades, its volumes are a lower bound.
  for (const c of cols) text(ctx, c.key === 'volume' && view.tapeComplete === false ? 'VOL*' : c.title, c, HEADER_HEIGHT / 2, colours.dim, 'center');

  if (!view.synced) {
    // An out-of-sync book is shown dimmed: it is no price to trade on.
    ctx.fillStyle = 'rgba(13,15,18,0.55)';
    ctx.fillRect(0, HEADER_HEIGHT, width, height - HEADER_HEIGHT);
  }
}

function band(ctx, x, y, w, colour) {
  ctx.fillStyle = colour;
  ctx.fillRect(x, y, w, ROW_HEIGHT);
}

// A horizontal bar in a cell: bids grow from the price column leftwards, asks rightwards.
function bar(ctx, c, y, share, colour, alpha, fromRight) {
  const w = Math.max(1, Math.round((c.w - 2) * Math.min(1, share)));
  ctx.globalAlpha = alpha;
  ctx.fillStyle = colour;
  ctx.fillRect(fromRight ? c.x + c.w - 1 - w : c.x + 1, y + 2, w, ROW_HEIGHT - 4);
  ctx.globalAlpha = 1;
}

function text(ctx, s, c, y, colour, align, bold = false) {
  ctx.font = bold ? BOLD : FONT;
  ctx.fillStyle = colour;
  ctx.textAlign = align;
  const x = align === 'right' ? c.x + c.w - 4 : align === 'left' ? c.x + 4 : c.x + c.w / 2;
  ctx.fillText(s, x, y);
}

function chip(ctx, c, y, orders, colours) {
  const quantity = orders.reduce((sum, o) => sum + o.quantity, 0);
  // The least advanced state shows (a pending order among working ones is what to watch).
  const order = ['pending', 'cancel-pending', 'partially-filled', 'working'];
  const state = order.find((s) => orders.some((o) => o.state === s)) || orders[0].state;
  ctx.fillStyle = colours.states[state] || colours.fg;
  ctx.fillRect(c.x + 2, y + 2, c.w - 4, ROW_HEIGHT - 4);
  ctx.font = BOLD;
  ctx.fillStyle = '#000';
  ctx.textAlign = 'center';
  ctx.fillText(orders.length > 1 ? `${quantity}·${orders.length}` : String(quantity), c.x + c.w / 2, y + ROW_HEIGHT / 2);
}

// 1234 -> "1,234"; 123456 -> "123k"; 12345678 -> "12.3M", for narrow columns.
function compact(n) {
  if (n < 100_000) return n.toLocaleString('en-US');
  if (n < 10_000_000) return `${Math.round(n / 1000)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}
