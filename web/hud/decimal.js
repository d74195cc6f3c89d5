// The page's one exact decimal arithmetic, for what it derives from the floor's decimal strings
// (a price's ticks, a mid, a re-marked P&L): a value is a BigInt count of 10^-places, never a
// binary float, so nothing the trader reads is rounded by the browser.

// '-12.50' -> {n: -1250n, places: 2}; null when the text is no plain decimal.
export function parse(text) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(text ?? '').trim());
  if (!m) return null;
  const frac = m[3] || '';
  return { n: BigInt(`${m[1]}${m[2]}${frac}`), places: frac.length };
}

// (-1250n, 2) -> '-12.50': exactly `places` decimals.
export function format(n, places) {
  const big = BigInt(n);
  const negative = big < 0n;
  const digits = (negative ? -big : big).toString().padStart(places + 1, '0');
  const whole = digits.slice(0, digits.length - places);
  const frac = places ? `.${digits.slice(digits.length - places)}` : '';
  return `${negative ? '-' : ''}${whole}${frac}`;
}

function at({ n, places }, to) {
  return n * 10n ** BigInt(to - places);
}

// The mid of two prices, exactly: on their decimals when it falls on them, else one more
// ('187.24', '187.26' -> '187.25'; '187.24', '187.25' -> '187.245').
export function mid(a, b) {
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return null;
  const places = Math.max(x.places, y.places);
  const sum = at(x, places) + at(y, places);
  return sum % 2n === 0n ? format(sum / 2n, places) : format(sum * 5n, places + 1);
}

// Unrealized P&L moved from the floor's figure at its mark to a new mark:
// pnl + quantity x (newMark - mark), exact (the floor's figure keeps its own rounding).
export function remarked(pnl, quantity, mark, newMark) {
  const p = parse(pnl);
  const m = parse(mark);
  const n = parse(newMark);
  if (!p || !m || !n) return null;
  const places = Math.max(p.places, m.places, n.places);
  return format(at(p, places) + BigInt(quantity) * (at(n, places) - at(m, places)), places);
}
