// Prices as integer ticks: a decimal string such as "187.25" becomes 18725 on a 0.01 grid, and
// back, by string arithmetic only, so no binary float ever holds a price. Tick counts stay far
// below 2^53 (a $10,000,000 price on a 0.0001 grid is 10^11 ticks), so plain numbers are exact.

export class TickError extends Error {}

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
  return decimalString(ticks * g.units, g.scale);
}

// The mid of two tick prices, exactly: a half tick gets one more decimal ("187.245").
export function midString(bidTicks, askTicks, g) {
  const sum = (bidTicks + askTicks) * g.units; // twice the mid, in grid units
  if (sum % 2 === 0) return decimalString(sum / 2, g.scale);
  return decimalString(sum * 5, g.scale + 1);
}

function decimalString(units, scale) {
  const negative = units < 0;
  let s = String(Math.abs(units));
  if (scale > 0) {
    s = s.padStart(scale + 1, '0');
    s = `${s.slice(0, -scale)}.${s.slice(-scale)}`;
  }
  return negative ? `-${s}` : s;
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
