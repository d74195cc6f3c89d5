// Prices as the HUD handles them: decimal strings on the wire, integer ticks in between, never
// floats (0.1 + 0.2 is not 0.3). The floor's prices have at most two decimals (cents).
export const DECIMALS = 2;
const SCALE = 10 ** DECIMALS;
const PLAIN = /^(\d+)(?:\.(\d+))?$/;

// '187.25' -> 18725; null for anything that is not a plain non-negative decimal with at most
// DECIMALS places (the floor refuses the rest, so the HUD does not round it into something else).
export function toTicks(text) {
  const m = PLAIN.exec(String(text ?? '').trim());
  if (!m) return null;
  const frac = m[2] || '';
  if (frac.length > DECIMALS && /[1-9]/.test(frac.slice(DECIMALS))) return null;
  const ticks = Number(m[1]) * SCALE + Number((frac + '0'.repeat(DECIMALS)).slice(0, DECIMALS));
  return Number.isSafeInteger(ticks) ? ticks : null;
}

// 18725 -> '187.25' (always DECIMALS places, the form the floor writes back).
export function fromTicks(ticks) {
  const sign = ticks < 0 ? '-' : '';
  const abs = Math.abs(ticks);
  const whole = Math.floor(abs / SCALE);
  const frac = String(abs % SCALE).padStart(DECIMALS, '0');
  return `${sign}${whole}.${frac}`;
}

// The price one or more ticks away; null when the text is not a price or the step goes to 0.
export function stepPrice(text, steps) {
  const ticks = toTicks(text);
  if (ticks === null || ticks + steps <= 0) return null;
  return fromTicks(ticks + steps);
}

// Normalises what a trader typed ('187.2' -> '187.20'); null if it is not a price above 0.
export function normalisePrice(text) {
  const ticks = toTicks(text);
  return ticks === null || ticks === 0 ? null : fromTicks(ticks);
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
