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
