// Prices as the trader reads them: decimal strings from the floor, stepped in integer ticks
// (ticks.js), shown with their sign or as a percentage, never through a binary float.
import { grid, toTicks, fromTicks } from './ticks.js';

// The floor's grid (US stocks at or above $1, the paper venue's contracts): the ticket steps its
// limit on it; the ladder keys its book on the grid the book snapshot names.
export const CENTS = grid('0.01');
const DECIMALS = 2;

// The price `steps` ticks away on grid `g`; null when the text is no price on it or the step
// would reach 0.
export function stepPrice(text, steps, g = CENTS) {
  let ticks;
  try {
    ticks = toTicks(String(text ?? ''), g);
  } catch {
    return null;
  }
  return ticks + steps > 0 ? fromTicks(ticks + steps, g) : null;
}

// A signed decimal string for display with its sign ('+12.50', '-3.00'), without arithmetic.
export function signed(text) {
  if (text === null || text === undefined) return '—';
  const s = String(text);
  return s.startsWith('-') || /^0(\.0*)?$/.test(s) ? s : `+${s}`;
}

// A fraction as a percentage rounded half up to `places` decimals, without floats:
// '0.052' -> '5.2', '0.1024837965' -> '10.2', '-0.1' -> '-10', '1' -> '100'.
export function percent(fraction, places = 1) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(fraction ?? ''));
  if (!m) return null;
  const digits = m[3] || '';
  // value * 100 * 10^places as an integer, from value * 10^digits.length.
  const scaled = BigInt(m[2] + digits) * 100n * 10n ** BigInt(places);
  const divisor = 10n ** BigInt(digits.length);
  const rounded = (scaled + divisor / 2n) / divisor;
  const text = rounded.toString().padStart(places + 1, '0');
  const whole = text.slice(0, text.length - places);
  const frac = text.slice(text.length - places).replace(/0+$/, '');
  const sign = m[1] && rounded !== 0n ? '-' : '';
  return `${sign}${whole}${frac ? `.${frac}` : ''}`;
}

// Trailing zeros beyond cents dropped for display ('229.890000' -> '229.89', '0.0250' -> '0.025'),
// the value unchanged.
export function trimmed(text) {
  if (text === null || text === undefined) return text;
  const m = /^(-?\d+)\.(\d+)$/.exec(String(text));
  if (!m) return String(text);
  const frac = m[2].replace(/0+$/, '').padEnd(DECIMALS, '0');
  return `${m[1]}.${frac}`;
}

// Exact decimal arithmetic for what the page derives from the floor's decimal strings: a value is
// [digits as a BigInt, places]; never a binary float.
function dec(text) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(text ?? ''));
  if (!m) return null;
  const frac = m[3] || '';
  return [BigInt(`${m[1]}${m[2]}${frac}`), frac.length];
}

function atPlaces([n, places], to) {
  return n * 10n ** BigInt(to - places);
}

function decText(n, places) {
  const negative = n < 0n;
  const digits = (negative ? -n : n).toString().padStart(places + 1, '0');
  const whole = digits.slice(0, digits.length - places);
  const frac = places ? `.${digits.slice(digits.length - places)}` : '';
  return `${negative ? '-' : ''}${whole}${frac}`;
}

// The mid of a bid and an ask, exactly (one more decimal than the prices when it falls between).
export function midOf(bid, ask) {
  const b = dec(bid);
  const a = dec(ask);
  if (!b || !a) return null;
  const places = Math.max(b[1], a[1]);
  return decText((atPlaces(b, places) + atPlaces(a, places)) * 5n, places + 1);
}

// Unrealized P&L moved from the floor's figure at its mark to a new mark:
// pnl + quantity x (newMark - mark), exact (the floor's figure keeps its own rounding).
export function remarked(pnl, quantity, mark, newMark) {
  const p = dec(pnl);
  const m = dec(mark);
  const n = dec(newMark);
  if (!p || !m || !n) return null;
  const places = Math.max(p[1], m[1], n[1]);
  const moved = BigInt(quantity) * (atPlaces(n, places) - atPlaces(m, places));
  return decText(atPlaces(p, places) + moved, places);
}
