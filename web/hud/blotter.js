// The blotter: every order of the trader's accounts with its state, live. The first page comes
// from the orders query, then orderEvents moves the rows (deduplicated by event id; an event of an
// order not on the page fetches it). The staged order (not sent) sits on top. Publishes the
// `orders` topic the ladder draws own orders from. Cancel and Cancel All need no arming: they
// only take risk off.
import * as store from './store.js';
import { gql, live, onConnection } from './gql.js';
import { el, byId, pulse } from './dom.js';
import { uiState, LABEL, OPEN } from './states.js';
import { hotkey } from './hotkeys.js';
import { trimmed } from './prices.js';

const ORDER_FIELDS = 'id account agent symbol side quantity filledQuantity averageFillPrice limitPrice timeInForce state reason parentId createdAt updatedAt';
// Who authorised the order with which kind of passkey (null: an agent's order, no passkey).
const AUTHORISED = 'ledgerEntry { authorization { ceremony synced credentialId } }';
const ORDERS = `query { orders(first: 100) { edges { node { ${ORDER_FIELDS} ${AUTHORISED} } } } }`;
const ORDER = `query($id: ID!) { order(id: $id) { ${ORDER_FIELDS} } }`;
// Orders fetched in one request, each under an alias (the API allows 15 aliases a request).
const BATCH = 10;
const BATCH_WAIT_MS = 25;
function ordersQuery(count) {
  const params = Array.from({ length: count }, (_, i) => `$i${i}: ID!`).join(', ');
  const fields = Array.from({ length: count }, (_, i) => `o${i}: order(id: $i${i}) { ${ORDER_FIELDS} ${AUTHORISED} }`);
  return `query(${params}) { ${fields.join(' ')} }`;
}
const STAGED_ORDERS = `query { stagedOrders { stagedId orderHash orderHashPrefix account symbol side orderType quantity tif
  limitPrice stopPrice stopLoss createdAt } }`;
const EVENTS = `subscription { orderEvents { id orderId account agent symbol side quantity filledQuantity averageFillPrice
  reason limitPrice kind ts } }`;
const DISCARD = `mutation($id: String!) { discardStaged(stagedId: $id) { __typename
  ... on Invalid { reason detail } } }`;
const CANCEL = `mutation($id: String!) { cancelOrder(commandId: $id) { __typename
  ... on CancelSent { commandId target } ... on Invalid { reason detail field } } }`;
// No account: every account the trader trades, whichever rows this page has loaded.
const CANCEL_ALL = `mutation { cancelAllOrders { __typename
  ... on CancelSent { commandId accounts } ... on Invalid { reason detail field } } }`;

// An event's kind -> the UI state it moves the order to.
const KIND_STATE = {
  ACCEPTED: 'pending', // the floor took and ledgered it; the venue has not acknowledged it
  SUBMITTED: 'working',
  PARTIALLY_FILLED: 'partially-filled',
  FILLED: 'filled',
  CANCELLED: 'cancelled',
  EXPIRED: 'expired',
  REJECTED: 'rejected',
};
// Records arrive late and twice: a state only moves forward. Cancel-pending is ours (the cancel
// is on its way); a fill does not undo it, the cancel's answer does.
const RANK = { staged: 0, pending: 1, working: 2, 'partially-filled': 3, 'cancel-pending': 4, filled: 9, cancelled: 9, rejected: 9, expired: 9 };
const TERMINAL = 9;
const CANCEL_CHECK_MS = 8000;
const SHOWN = 300;
const SEEN_EVENTS = 5000;

// The trader's own orders are signed as agent trader.<name>; the account's other orders come
// from agents (the Sniper's slices, say) or other traders, and say so in the By column.
function myAgent() {
  const me = store.latest('me');
  return me ? `trader.${me.name}` : null;
}

function by(agent) {
  if (!agent) return '';
  return agent === myAgent() ? 'me' : agent.replace(/^trader\./, '');
}

// The API's STAGED for a real order means the floor holds it and has not sent it to the venue
// yet: to the trader it is sent (Pending), unlike the HUD's own staged ticket.
function apiState(state) {
  return state === 'STAGED' ? 'pending' : uiState(state);
}

// 'synced' | 'device-bound' | 'none' (no passkey authorised it), and what the badge's title says.
function credentialOf(o) {
  const a = o.ledgerEntry && o.ledgerEntry.authorization;
  if (!a || a.synced === null || a.synced === undefined) return { credential: 'none', credentialTitle: '' };
  return {
    credential: a.synced ? 'synced' : 'device-bound',
    credentialTitle: `${a.synced ? 'Synced passkey' : 'Device-bound passkey'} ${a.credentialId.slice(0, 10)}… (${a.ceremony})`,
  };
}

function rowOfOrder(o) {
  return {
    ...(o.ledgerEntry !== undefined ? credentialOf(o) : {}),
    id: o.id, account: o.account, agent: o.agent, symbol: o.symbol, side: o.side, quantity: o.quantity,
    filledQuantity: o.filledQuantity, limitPrice: o.limitPrice, averageFillPrice: o.averageFillPrice,
    state: apiState(o.state), reason: o.reason, createdAt: o.createdAt, updatedAt: o.updatedAt,
  };
}

function rowOfStaged(s) {
  return {
    id: s.stagedId, account: s.account, agent: myAgent(), symbol: s.symbol, side: s.side, quantity: s.quantity,
    filledQuantity: 0, limitPrice: s.limitPrice, averageFillPrice: null, state: 'staged', reason: null,
    createdAt: s.createdAt, updatedAt: s.createdAt, staged: true, orderType: s.orderType,
  };
}

// The row after `next` (a fresher report of the same order), keeping what only moves forward.
function merge(row, next) {
  if (!row) return next;
  const filled = Math.max(row.filledQuantity || 0, next.filledQuantity || 0);
  const moreFilled = (next.filledQuantity || 0) >= (row.filledQuantity || 0);
  let state = row.state;
  const from = RANK[row.state];
  const to = RANK[next.state];
  if (from >= TERMINAL) {
    // A late fill after a cancel completes the order: the venue's word (a real venue does this).
    if (next.state === 'filled' && filled >= row.quantity) state = 'filled';
  } else if (to > from || (to === from && row.state === next.state)) {
    state = next.state;
  } else if (row.state === 'cancel-pending' && to >= TERMINAL) {
    state = next.state;
  }
  if (state === 'partially-filled' && filled >= next.quantity) state = 'filled';
  return {
    ...row,
    ...next,
    state,
    filledQuantity: filled,
    averageFillPrice: moreFilled ? next.averageFillPrice ?? row.averageFillPrice : row.averageFillPrice,
    reason: next.reason ?? row.reason,
    createdAt: row.createdAt || next.createdAt,
    updatedAt: later(row.updatedAt, next.updatedAt),
  };
}

function later(a, b) {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(b) >= Date.parse(a) ? b : a;
}

function time(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour12: false });
}

export function mountBlotter(root) {
  const statusLine = el('span', { id: 'blotter-status', role: 'status', 'aria-live': 'polite' });
  const cancelAllButton = el('button', { id: 'cancel-all', type: 'button', class: 'danger', title: 'Cancel every open order (X); no arming needed' }, 'Cancel all');
  const tbody = el('tbody');
  root.append(
    el('div', { class: 'pane-head' }, el('h2', {}, 'Orders'), statusLine, el('span', { class: 'spacer' }), cancelAllButton),
    el('table', { id: 'blotter', class: 'dense' },
      el('thead', {}, el('tr', {}, ...['Time', 'By', 'Symbol', 'Side', 'Qty', 'Filled', 'Limit', 'Avg', 'State', ''].map((h) => el('th', {}, h)))),
      tbody),
  );

  const rows = new Map(); // id -> row
  const trs = new Map(); // id -> <tr>
  const seen = new Set(); // event ids applied
  const fetching = new Set(); // order ids being fetched
  let stagedId = null; // the Execute target
  const listed = new Map(); // stagedId -> Staged the floor listed at load, not selected until picked

  function say(state, text) {
    statusLine.dataset.state = state;
    statusLine.textContent = text;
  }

  let publishQueued = false;
  function publishOrders() {
    if (publishQueued) return;
    publishQueued = true;
    queueMicrotask(() => {
      publishQueued = false;
      store.publish('orders', new Map(rows));
    });
  }

  function sortKey(row) {
    return row.staged ? Infinity : Date.parse(row.createdAt || row.updatedAt) || 0;
  }

  function place(tr, row) {
    const key = sortKey(row);
    for (const other of tbody.children) {
      const r = rows.get(other.dataset.orderId);
      if (other !== tr && r && sortKey(r) < key) {
        tbody.insertBefore(tr, other);
        return;
      }
    }
    tbody.append(tr);
  }

  function draw(row, changed) {
    let tr = trs.get(row.id);
    const fresh = !tr;
    if (fresh) {
      tr = el('tr', { dataset: { orderId: row.id } });
      // A click on the row (not on its buttons) opens the order's detail and timeline.
      tr.addEventListener('click', (event) => {
        const r = rows.get(tr.dataset.orderId);
        if (r && !r.staged && !event.target.closest('button')) store.publish('order-detail', r.id);
      });
      trs.set(row.id, tr);
    }
    tr.dataset.state = row.state;
    tr.dataset.side = row.side;
    tr.dataset.mine = String(Boolean(row.agent) && row.agent === myAgent());
    if (row.credential) tr.dataset.credential = row.credential;
    tr.title = row.reason ? `${LABEL[row.state]}: ${row.reason}` : `${row.id}`;
    const filledCell = el('td', { class: 'num' });
    if (row.state === 'partially-filled') {
      filledCell.append(el('progress', { class: 'fill-bar', max: row.quantity, value: row.filledQuantity }));
    }
    filledCell.append(el('span', {}, row.filledQuantity ? `${row.filledQuantity}` : ''));
    const cancellable = row.staged || (OPEN.has(row.state) && row.state !== 'cancel-pending');
    tr.replaceChildren(
      el('td', { class: 'dim' }, time(row.updatedAt)),
      el('td', { class: 'by', title: row.agent || '' }, by(row.agent),
        row.credential && row.credential !== 'none'
          ? el('span', { class: `badge ${row.credential}`, title: row.credentialTitle }, row.credential === 'synced' ? 'SYNC' : 'DEV')
          : null),
      el('td', { class: 'sym' }, row.symbol),
      el('td', { class: `side ${row.side === 'BUY' ? 'buy' : 'sell'}` }, row.side),
      el('td', { class: 'num' }, String(row.quantity)),
      filledCell,
      el('td', { class: 'num' }, row.limitPrice || (row.orderType && row.orderType !== 'LMT' ? row.orderType : 'MKT')),
      el('td', { class: 'num' }, trimmed(row.averageFillPrice) || ''),
      el('td', { class: 'state' }, el('span', { class: 'chip' }, LABEL[row.state] || row.state)),
      el('td', {},
        row.staged && row.id !== stagedId && listed.has(row.id)
          ? el('button', { type: 'button', class: 'select', title: 'Make this staged order the one Execute sends', onclick: () => select(row.id) }, 'Select')
          : null,
        cancellable ? el('button', { type: 'button', class: 'cancel', title: row.staged ? 'Discard the staged order (nothing was sent)' : 'Cancel this order', onclick: () => cancel(row.id) }, row.staged ? 'Discard' : 'Cancel') : ''),
    );
    if (fresh) place(tr, row);
    if (fresh || changed) pulse(tr);
    trimRows();
  }

  function trimRows() {
    while (tbody.children.length > SHOWN) {
      const last = tbody.lastElementChild;
      trs.delete(last.dataset.orderId);
      rows.delete(last.dataset.orderId);
      last.remove();
    }
  }

  function put(next) {
    const before = rows.get(next.id);
    const row = merge(before, next);
    rows.set(row.id, row);
    draw(row, !before || before.state !== row.state || before.filledQuantity !== row.filledQuantity);
    publishOrders();
    return row;
  }

  function drop(id) {
    rows.delete(id);
    const tr = trs.get(id);
    if (tr) tr.remove();
    trs.delete(id);
    publishOrders();
  }

  // Orders (with who authorised them) for events of orders not on the page, and for the ones
  // just executed: gathered for a moment and fetched together.
  const queued = new Set();
  let flushTimer = null;
  function fetchOrder(id) {
    if (fetching.has(id)) return;
    fetching.add(id);
    queued.add(id);
    if (!flushTimer) flushTimer = setTimeout(flush, BATCH_WAIT_MS);
  }

  async function flush() {
    flushTimer = null;
    const ids = [...queued].slice(0, BATCH);
    ids.forEach((id) => queued.delete(id));
    if (queued.size) flushTimer = setTimeout(flush, 0);
    const variables = Object.fromEntries(ids.map((id, i) => [`i${i}`, id]));
    try {
      const data = await gql(ordersQuery(ids.length), variables);
      ids.forEach((id, i) => {
        const o = data[`o${i}`];
        if (o) put(rowOfOrder(o));
      });
    } catch (err) {
      console.warn(`orders ${ids.join(', ')} not fetched`, err);
    } finally {
      ids.forEach((id) => fetching.delete(id));
    }
  }

  function onEvent({ orderEvents: e }) {
    if (seen.has(e.id)) return;
    seen.add(e.id);
    if (seen.size > SEEN_EVENTS) seen.delete(seen.values().next().value);
    const known = rows.has(e.orderId);
    put({
      id: e.orderId, account: e.account, agent: e.agent, symbol: e.symbol, side: e.side, quantity: e.quantity,
      filledQuantity: e.filledQuantity, limitPrice: e.limitPrice, averageFillPrice: e.averageFillPrice,
      state: KIND_STATE[e.kind] || 'pending', reason: e.reason, updatedAt: e.ts, createdAt: known ? undefined : e.ts,
    });
    if (!known) fetchOrder(e.orderId);
  }

  async function loadPage() {
    try {
      const data = await gql(ORDERS);
      for (const { node } of data.orders.edges) put(rowOfOrder(node));
    } catch (err) {
      say('error', `Orders not loaded: ${err.message}`);
    }
  }

  // A reload lists the session's live staged orders (the floor expires them), but selects none
  // as the Execute target: one staged long ago may be far from the market; the trader picks it.
  async function loadStaged() {
    try {
      for (const s of (await gql(STAGED_ORDERS)).stagedOrders) {
        if (rows.has(s.stagedId)) continue;
        listed.set(s.stagedId, s);
        put(rowOfStaged(s));
      }
    } catch {
      // An API without stagedOrders: staged orders live until the page reloads.
    }
  }

  function select(id) {
    const s = listed.get(id);
    if (s) store.publish('staged', s);
  }

  // --- staged and executed (from the ticket and the interlock) -------------------------------
  function onStaged(staged) {
    const previous = stagedId;
    stagedId = staged ? staged.stagedId : null;
    if (previous && previous !== stagedId) {
      if (listed.has(previous) && rows.has(previous)) draw(rows.get(previous), false); // Select again
      else drop(previous);
    }
    if (staged) put(rowOfStaged(staged));
  }

  function onExecuted(x) {
    if (!x) return;
    listed.delete(x.stagedId);
    if (x.stagedId === stagedId) {
      drop(stagedId);
      stagedId = null;
    } else {
      drop(x.stagedId);
    }
    const s = x.staged;
    const state = x.state === 'REJECTED' ? 'rejected' : 'pending';
    put({
      id: x.commandId, account: s.account, agent: myAgent(), symbol: s.symbol, side: s.side, quantity: s.quantity,
      filledQuantity: 0, limitPrice: s.limitPrice, averageFillPrice: null, state, reason: x.reason || null,
      createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(),
    });
    fetchOrder(x.commandId);
  }

  // --- cancelling ---------------------------------------------------------------------------
  async function cancel(id) {
    const row = rows.get(id);
    if (!row) return;
    if (row.staged) {
      await discard(id);
      return;
    }
    // Marked at the click: the venue's Cancelled record can overtake the mutation's answer, and
    // the row must still pass through CancelPending; a refusal puts the floor's state back.
    markCancelPending(id);
    try {
      const r = (await gql(CANCEL, { id })).cancelOrder;
      if (r.__typename !== 'CancelSent') {
        recheck(id);
        say('invalid', `Not cancelled: ${r.detail} (${r.reason})`);
        return;
      }
      say('done', `Cancel sent for ${row.side} ${row.quantity} ${row.symbol}.`);
    } catch (err) {
      recheck(id);
      say('error', `Cancel failed: ${err.message}`);
    }
  }

  // Discarded on the floor, so no other tab, reload or program can execute it. One the floor
  // says cannot be executed from here anyway (executed, unknown, another session's) goes too.
  const GONE = new Set(['desk.already_executed', 'desk.not_staged', 'desk.staged_in_another_session']);
  async function discard(id) {
    try {
      const r = (await gql(DISCARD, { id })).discardStaged;
      if (r.__typename !== 'Discarded' && !GONE.has(r.reason)) {
        say('invalid', `Not discarded: ${r.detail} (${r.reason})`);
        return;
      }
    } catch (err) {
      say('error', `Not discarded: ${err.message}`);
      return;
    }
    listed.delete(id);
    if (store.latest('staged') && store.latest('staged').stagedId === id) store.publish('staged', null);
    else drop(id);
    say('done', 'Staged order discarded (nothing was sent).');
  }

  function markCancelPending(id) {
    const row = rows.get(id);
    if (!row || !OPEN.has(row.state) || row.state === 'cancel-pending') return;
    put({ ...row, state: 'cancel-pending' });
    // No answer to the cancel: the floor's own state replaces the guess (a refused cancel).
    setTimeout(() => recheck(id), CANCEL_CHECK_MS);
  }

  // The floor's state of an order still shown as CancelPending replaces the guess.
  async function recheck(id) {
    if (!rows.get(id) || rows.get(id).state !== 'cancel-pending') return;
    try {
      const o = (await gql(ORDER, { id })).order;
      if (o && rows.get(id).state === 'cancel-pending' && apiState(o.state) !== 'pending') {
        rows.set(id, { ...rows.get(id), state: apiState(o.state) });
        draw(rows.get(id), true);
        publishOrders();
      }
    } catch (err) {
      console.warn(`order ${id} not re-checked`, err);
    }
  }

  async function cancelAll() {
    const open = [...rows.values()].filter((r) => !r.staged && OPEN.has(r.state));
    if (store.latest('staged')) store.publish('staged', null);
    cancelAllButton.disabled = true;
    for (const r of open) markCancelPending(r.id); // at once, as for one order's cancel
    try {
      const r = (await gql(CANCEL_ALL)).cancelAllOrders;
      if (r.__typename !== 'CancelSent') {
        for (const o of open) recheck(o.id);
        say('invalid', `Not cancelled: ${r.detail} (${r.reason})`);
      } else {
        say('done', `Cancel all sent for ${r.accounts.join(', ')}.`);
      }
    } catch (err) {
      for (const o of open) recheck(o.id);
      say('error', `Cancel all failed: ${err.message}`);
    } finally {
      cancelAllButton.disabled = false;
    }
  }

  // --- feeds --------------------------------------------------------------------------------
  let unsubscribe = null;
  function follow() {
    if (unsubscribe) unsubscribe();
    // Subscribe before reading the page, so no event falls between the two.
    unsubscribe = live(EVENTS, {}, onEvent, {
      onError: (err) => {
        say('error', `Order events interrupted (${err.message}): catching up…`);
        setTimeout(() => {
          follow();
          loadPage().then(() => say('done', 'Order events resumed.'));
        }, 1000);
      },
    });
  }

  cancelAllButton.addEventListener('click', cancelAll);
  hotkey('X', 'Cancel all open orders (no arming needed)', cancelAll);
  store.on('staged', onStaged);
  store.on('executed', onExecuted);
  // Events missed while the socket was down are caught up from the query when it reopens.
  let wasClosed = false;
  onConnection(({ state }) => {
    if (state === 'closed') wasClosed = true;
    if (state === 'open' && wasClosed) {
      wasClosed = false;
      loadPage();
    }
  });
  follow();
  const loaded = Promise.all([loadPage(), loadStaged()]);
  // loaded(): the first page and the session's staged orders are in (for tests and tools).
  window.hud.blotter = { rows: () => [...rows.values()], cancelAll, loaded: () => loaded.then(() => true) };
}
