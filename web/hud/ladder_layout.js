// Where things are on the ladder's canvas (CSS pixels): the columns, the rows, and which cell a
// point falls in. Shared by the painter, the click handler and the test hook cellCenter, so a
// click lands on exactly the cell that was drawn.

export const ROW_HEIGHT = 16;
export const HEADER_HEIGHT = 18;

// Left to right; `side` says which side of the book a click in the column trades.
const COLUMNS = [
  { key: 'buys', title: 'BUY', share: 0.11, side: 'bid' },
  { key: 'bidCum', title: 'CUM', share: 0.11, side: 'bid' },
  { key: 'bid', title: 'BID', share: 0.16, side: 'bid' },
  { key: 'price', title: 'PRICE', share: 0.15, side: null },
  { key: 'ask', title: 'ASK', share: 0.16, side: 'ask' },
  { key: 'askCum', title: 'CUM', share: 0.11, side: 'ask' },
  { key: 'sells', title: 'SELL', share: 0.11, side: 'ask' },
  { key: 'volume', title: 'VOL', share: 0.09, side: null },
];

// The columns at this width, in whole pixels so lines are crisp.
export function columns(width) {
  let x = 0;
  return COLUMNS.map((c, i) => {
    const right = i === COLUMNS.length - 1 ? width : Math.round(x + c.share * width);
    const col = { ...c, x: Math.round(x), w: right - Math.round(x) };
    x = right;
    return col;
  });
}

export function rowCount(height) {
  return Math.max(1, Math.floor((height - HEADER_HEIGHT) / ROW_HEIGHT));
}

export function rowTop(index) {
  return HEADER_HEIGHT + index * ROW_HEIGHT;
}

// The cell under (x, y), canvas CSS pixels: {row, column} or null (header, outside).
export function cellAt(cols, rows, x, y) {
  if (y < HEADER_HEIGHT) return null;
  const row = Math.floor((y - HEADER_HEIGHT) / ROW_HEIGHT);
  if (row < 0 || row >= rows) return null;
  const column = cols.find((c) => x >= c.x && x < c.x + c.w);
  return column ? { row, column } : null;
}

// The centre of a side's size cell in a row (canvas CSS pixels).
export function cellCentre(cols, row, side) {
  const col = cols.find((c) => c.key === side);
  return { x: col.x + col.w / 2, y: rowTop(row) + ROW_HEIGHT / 2 };
}

// The tick at the top row that puts `centre` in the middle row.
export function topFor(centre, rows) {
  return centre + Math.floor(rows / 2);
}

// Auto-centre only when the centre has left the middle third, so the ladder does not scroll on
// every tick and a trader's eye keeps its place.
export function offCentre(top, rows, centre) {
  const index = top - centre;
  return index < rows / 3 || index > (2 * rows) / 3;
}
