// The floor's clock as the page sees it: grants expire by the server's time, so a countdown on a
// skewed laptop clock would lie. Every API answer's Date header bounds the server's time: at
// some moment between sending and receipt it read [D, D + HEADER_WINDOW_MS). Intersecting those
// bounds over the answers narrows the offset below the header's whole second, and re-measures it
// all session. The offset is held against the monotonic clock (performance.now), which no NTP
// step or manual change of the laptop's clock moves. The page goes by the LATEST the server's
// time can be, so a grant ends here no later than at the server.

// The header truncates to the second, and a server may cache it for up to another second
// (uvicorn refreshes it once a second): the server's time is within 2 s after it.
const HEADER_WINDOW_MS = 2000;

// Execute stops this long before the grant's expiry by the server's clock (its latest bound):
// the execute request's flight, so a click never races the expiry.
export const EXPIRY_MARGIN_MS = 1000;

let low = -Infinity; // bounds of (server time - performance.now()), ms
let high = Infinity;

// sentAt/receivedAt: performance.now() around the request whose answer this is.
export function noteServerDate(response, sentAt, receivedAt) {
  const header = response.headers.get('date');
  const server = header ? Date.parse(header) : NaN;
  if (Number.isNaN(server)) return;
  const lo = server - receivedAt;
  const hi = server + HEADER_WINDOW_MS - sentAt;
  if (Math.max(low, lo) > Math.min(high, hi)) {
    // Disagrees with what we held: the server's clock moved (or ours drifted): start again.
    low = lo;
    high = hi;
    return;
  }
  low = Math.max(low, lo);
  high = Math.min(high, hi);
}

// The latest the server's time can be now (ms since the epoch); the page's own clock until an
// answer came.
export function serverNow() {
  if (!Number.isFinite(low)) return Date.now();
  return performance.now() + high;
}

// {offsetMs: the server's time - this page's wall clock, the bounds' middle; uncertaintyMs:
// half the bounds' width}.
export function clockOffset() {
  if (!Number.isFinite(low)) return { offsetMs: 0, uncertaintyMs: null };
  return { offsetMs: performance.now() + (low + high) / 2 - Date.now(), uncertaintyMs: (high - low) / 2 };
}

// 83_000 -> '01:23'; hours roll into minutes ('75:00'), never negative.
export function mmss(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}
