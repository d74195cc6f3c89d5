// The floor's clock as the page sees it: grants expire by the server's time, so a countdown on a
// skewed laptop clock would lie. Every API answer's Date header bounds the server's time: at
// some moment between sending and receipt it read [D, D + 1 s). Intersecting those bounds over
// the answers narrows the offset below the header's whole second, and re-measures it all
// session. The offset is held against the monotonic clock (performance.now), which no NTP step
// or manual change of the laptop's clock moves.

// Execute stops this long before the grant's expiry by the server's clock: what is left of the
// offset's uncertainty and the request's flight, so a click never races the expiry.
export const EXPIRY_MARGIN_MS = 1000;

let low = -Infinity; // bounds of (server time - performance.now()), ms
let high = Infinity;

// sentAt/receivedAt: performance.now() around the request whose answer this is.
export function noteServerDate(response, sentAt, receivedAt) {
  const header = response.headers.get('date');
  const server = header ? Date.parse(header) : NaN;
  if (Number.isNaN(server)) return;
  const lo = server - receivedAt;
  const hi = server + 1000 - sentAt;
  if (Math.max(low, lo) > Math.min(high, hi)) {
    // Disagrees with what we held: the server's clock moved (or ours drifted): start again.
    low = lo;
    high = hi;
    return;
  }
  low = Math.max(low, lo);
  high = Math.min(high, hi);
}

// The server's time now (ms since the epoch); the page's own clock until an answer came.
export function serverNow() {
  if (!Number.isFinite(low)) return Date.now();
  return performance.now() + (low + high) / 2;
}

// {offsetMs: server - this page's wall clock, uncertaintyMs: half the bounds' width}.
export function clockOffset() {
  if (!Number.isFinite(low)) return { offsetMs: 0, uncertaintyMs: null };
  return { offsetMs: serverNow() - Date.now(), uncertaintyMs: (high - low) / 2 };
}

// 83_000 -> '01:23'; hours roll into minutes ('75:00'), never negative.
export function mmss(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}
