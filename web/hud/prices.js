// Prices as the trader reads them: decimal strings from the floor, stepped in integer ticks
// (ticks.js), shown with their sign or as a percentage, never through a binary float.
import { grid, toTicks, fromTicks, DEFAULT_TICK_SIZE } from './ticks.js';

import { parse, format } from './decimal.js';

export { mid as midOf, remarked } from './decimal.js';

// The grid a price steps on when the book has not named its own (the ticket passes the book's).
export const DEFAULT_GRID = grid(DEFAULT_TICK_SIZE);
const DECIMALS = 2;

// The price `steps` ticks away on grid `g`; null when the text is no price on it or the step
// would reach 0.
export function stepPrice(text, steps, g = DEFAULT_GRID) {
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
  const d = parse(fraction);
  if (!d) return null;
  const negative = d.n < 0n;
  // |value| x 100 x 10^places as an integer, from |value| x 10^d.places, rounded half up.
  const scaled = (negative ? -d.n : d.n) * 100n * 10n ** BigInt(places);
  const divisor = 10n ** BigInt(d.places);
  const rounded = (scaled + divisor / 2n) / divisor;
  let text = format(rounded, places);
  if (places) text = text.replace(/0+$/, '').replace(/\.$/, '');
  return `${negative && rounded !== 0n ? '-' : ''}${text}`;
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
