// Positions by the average-cost method with their P&L, as the floor computes them from the fills
// (the positions subscription sends every position now, then each again when a fill moves it).
import { live, onConnection } from './gql.js';
import { el } from './dom.js';
import { signed, trimmed } from './prices.js';

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

  function draw(p) {
    const key = `${p.account}:${p.symbol}`;
    let tr = trs.get(key);
    if (!tr) {
      tr = el('tr', { dataset: { symbol: p.symbol, account: p.account } });
      trs.set(key, tr);
      tbody.append(tr);
    }
    tr.dataset.quantity = String(p.quantity);
    tr.dataset.flat = p.quantity === 0 ? 'true' : 'false';
    tr.replaceChildren(
      el('td', { class: 'sym' }, p.symbol),
      el('td', { class: 'dim' }, p.account),
      el('td', { class: `num ${p.quantity > 0 ? 'buy' : p.quantity < 0 ? 'sell' : ''}` }, String(p.quantity)),
      el('td', { class: 'num' }, trimmed(p.averageCost) || '—'),
      el('td', { class: 'num' }, trimmed(p.mark) || '—'),
      el('td', { class: pnlClass(p.unrealizedPnl) }, signed(trimmed(p.unrealizedPnl))),
      el('td', { class: pnlClass(p.realizedPnl) }, signed(trimmed(p.realizedPnl))),
    );
  }

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
