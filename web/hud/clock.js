// The floor's clock as the page sees it: grants expire by the server's time, so a countdown on a
// skewed laptop clock would lie. The offset comes from the Date header of an API answer (whole
// seconds, so an offset under ~1.5 s is noise and ignored).
let offsetMs = 0;

export function noteServerDate(response, sentAt, receivedAt) {
  const header = response.headers.get('date');
  const server = header ? Date.parse(header) : NaN;
  if (Number.isNaN(server)) return;
  // The header truncates to the second: its middle is half a second on.
  const estimate = server + 500 - (sentAt + receivedAt) / 2;
  offsetMs = Math.abs(estimate) > 1500 ? estimate : 0;
}

export function serverNow() {
  return Date.now() + offsetMs;
}

export function clockOffset() {
  return offsetMs;
}

// 83_000 -> '01:23'; hours roll into minutes ('75:00'), never negative.
export function mmss(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}
