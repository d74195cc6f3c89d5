// Prices as integer ticks: a decimal string such as "187.25" becomes 18725 on a 0.01 grid, and
// back, by string arithmetic only, so no binary float ever holds a price. Tick counts stay far
// below 2^53 (a $10,000,000 price on a 0.0001 grid is 10^11 ticks), so plain numbers are exact.

import { format, mid } from './decimal.js';

export class TickError extends Error {}

// The grid when nothing names another: US stocks at or above $1 (Reg NMS 612) and the paper
// venue's contracts. The book's snapshot names the symbol's own grid (tickSize), which wins.
export const DEFAULT_TICK_SIZE = '0.01';

// A grid from the tick size's decimal string ("0.01", "0.05", "0.0001", "1").
export function grid(tickSize) {
  const { digits, scale } = scaled(String(tickSize), 'tick size');
  if (digits <= 0) throw new TickError(`tick size must be positive, got "${tickSize}"`);
  return Object.freeze({ tickSize: String(tickSize), scale, units: digits });
}

// "187.25" -> 18725 on a 0.01 grid; TickError if the price is off the grid or not a decimal.
export function toTicks(price, g) {
  const { digits, scale } = scaled(String(price), 'price');
  if (scale > g.scale) {
    // More decimals than the grid has: only trailing zeros may be dropped.
    const drop = scale - g.scale;
    const p = 10 ** drop;
    if (digits % p !== 0) throw new TickError(`price ${price} is not on the ${g.tickSize} grid`);
    return ticksOf(digits / p, g, price);
  }
  return ticksOf(digits * 10 ** (g.scale - scale), g, price);
}

function ticksOf(units, g, price) {
  if (units % g.units !== 0) throw new TickError(`price ${price} is not on the ${g.tickSize} grid`);
  return units / g.units;
}

// 18725 -> "187.25" on a 0.01 grid (always the grid's number of decimals).
export function fromTicks(ticks, g) {
  return format(BigInt(ticks * g.units), g.scale);
}

// The mid of two tick prices, exactly: a half tick gets one more decimal ("187.245").
export function midString(bidTicks, askTicks, g) {
  return mid(fromTicks(bidTicks, g), fromTicks(askTicks, g));
}

// A decimal string as an integer count of 10^-scale: "187.25" -> {digits: 18725, scale: 2}.
function scaled(text, what) {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (!m) throw new TickError(`${what} must be a decimal string such as "187.25", got "${text}"`);
  const frac = m[2] || '';
  const digits = Number(m[1] + frac);
  if (!Number.isSafeInteger(digits)) throw new TickError(`${what} ${text} has too many digits`);
  return { digits, scale: frac.length };
}
