// Positions by the average-cost method with their P&L, as the floor computes them from the fills
// (the positions subscription sends every position now, then each again when a fill moves it).
// Between fills, the HUD's own symbol is re-marked at the ladder's live mid, once a frame: the
// floor's unrealized P&L moved by quantity x (mid - its mark), exactly. Only while that
// symbol's feed is live: a stale or gapped book's mid is no mark, so the floor's is shown.
import { live, onConnection } from './gql.js';
import { el } from './dom.js';
import { midOf, remarked, signed, trimmed } from './prices.js';
import * as store from './store.js';

const POSITIONS = `subscription { positions { account symbol quantity averageCost realizedPnl unrealizedPnl mark } }`;

function pnlClass(text) {
  if (text === null || text === undefined) return 'num';
  if (String(text).startsWith('-')) return 'num loss';
  return /^0(\.0*)?$/.test(String(text)) ? 'num' : 'num gain';
}

export function mountPositions(root) {
  const tbody = el('tbody');
  const statusLine = el('span', { id: 'positions-status', class: 'dim' });
  root.append(
    el('div', { class: 'pane-head' }, el('h2', {}, 'Positions'), statusLine),
    el('table', { id: 'positions', class: 'dense' },
      el('thead', {}, el('tr', {}, ...['Symbol', 'Account', 'Qty', 'Avg', 'Mark', 'Unrl P&L', 'Real P&L'].map((h) => el('th', {}, h)))),
      tbody),
  );
  const trs = new Map(); // account:symbol -> <tr>
  const floor = new Map(); // account:symbol -> the position as the floor last sent it
  let touch = null;

  // The floor's position, re-marked at the live mid when it is of the ladder's symbol.
  function shown(p) {
    if (!touch || touch.symbol !== p.symbol || p.quantity === 0 || p.mark == null || p.unrealizedPnl == null) return p;
    const feed = store.latest('feed');
    if (!feed || !feed.ok || feed.symbol !== p.symbol) return p;
    const mid = midOf(touch.bid, touch.ask);
    if (mid === null) return p;
    return { ...p, mark: mid, unrealizedPnl: remarked(p.unrealizedPnl, p.quantity, p.mark, mid), live: true };
  }

  function draw(floorPosition) {
    floor.set(`${floorPosition.account}:${floorPosition.symbol}`, floorPosition);
    const p = shown(floorPosition);
    const key = `${p.account}:${p.symbol}`;
    let tr = trs.get(key);
    if (!tr) {
      tr = el('tr', { dataset: { symbol: p.symbol, account: p.account } });
      trs.set(key, tr);
      tbody.append(tr);
    }
    tr.dataset.quantity = String(p.quantity);
    tr.dataset.flat = p.quantity === 0 ? 'true' : 'false';
    tr.dataset.mark = p.live ? 'live' : 'floor';
    tr.replaceChildren(
      el('td', { class: 'sym' }, p.symbol),
      el('td', { class: 'dim' }, p.account),
      el('td', { class: `num ${p.quantity > 0 ? 'buy' : p.quantity < 0 ? 'sell' : ''}` }, String(p.quantity)),
      el('td', { class: 'num' }, trimmed(p.averageCost) || '—'),
      el('td', { class: 'num', title: p.live ? "the ladder's live mid" : 'the mid at the last fill' }, trimmed(p.mark) || '—'),
      el('td', { class: pnlClass(p.unrealizedPnl) }, signed(trimmed(p.unrealizedPnl))),
      el('td', { class: pnlClass(p.realizedPnl) }, signed(trimmed(p.realizedPnl))),
    );
  }

  let pending = false;
  function redraw() {
    if (pending || !touch) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      for (const p of floor.values()) draw(p);
    });
  }
  store.on('touch', (t) => {
    touch = t;
    redraw();
  });
  store.on('feed', redraw); // out of sync: back to the floor's mark at once; in sync: live again

  let unsubscribe = null;
  function follow() {
    if (unsubscribe) unsubscribe();
    unsubscribe = live(POSITIONS, {}, ({ positions }) => {
      statusLine.textContent = '';
      draw(positions);
    }, {
      onError: (err) => {
        statusLine.textContent = `interrupted (${err.message}): catching up…`;
        setTimeout(follow, 1000);
      },
    });
  }
  // A reconnect re-sends the subscription, which starts with every position again.
  onConnection(({ state }) => {
    if (state === 'closed') statusLine.textContent = 'disconnected: positions may be old';
  });
  follow();
}
