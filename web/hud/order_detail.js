// The order detail: one order's terms and state, and where its time went. Clicking a blotter row
// opens it (the `order-detail` topic carries the order id); it shows the spans of the order's
// trace (orderTrace: the door or Kafka intake, the hot path's stages, the broker's
// acknowledgement, each fill, the workflows that followed) as a waterfall: one row per span,
// indented under its parent, a bar at its offset from the first span and as long as it lasted.
// A click on a row shows the span's attributes; a run of sibling spans of one name (a request's
// database queries) is one row until clicked. Spans reach the floor's store in batches (within a
// second), so the panel asks again every 2 s while it is open, and redraws only when the trace changed.
import * as store from './store.js';
import { gql } from './gql.js';
import { el } from './dom.js';
import { onNext } from './topics.js';
import { LABEL, uiState } from './states.js';

const DETAIL = `query($id: ID!, $commandId: String!) {
  order(id: $id) { id account agent symbol side quantity filledQuantity averageFillPrice limitPrice state reason createdAt }
  orderTrace(commandId: $commandId) { commandId traceIds startedAt durationNanos truncated
    spans { traceId spanId parentSpanId name service depth startOffsetNanos durationNanos status attributes { key value } } } }`;
const REFRESH_MS = 2000;
const TICKS = 4; // the ruler's divisions

// A duration for a person: µs under a millisecond, ms under a second, else s.
export function duration(nanos) {
  if (nanos < 1_000_000) return `${Math.round(nanos / 1000)} µs`;
  if (nanos < 1_000_000_000) return `${(nanos / 1_000_000).toFixed(nanos < 10_000_000 ? 2 : 1)} ms`;
  return `${(nanos / 1_000_000_000).toFixed(3)} s`;
}

// Sibling leaves of one name grouped into one row from this many on.
const GROUPED = 3;

// The spans (in tree order) cut into runs: consecutive siblings of one name with no children
// form one run, every other span a run of its own.
function runs(spans) {
  const out = [];
  spans.forEach((s, i) => {
    const leaf = !(spans[i + 1] && spans[i + 1].depth > s.depth);
    const run = out[out.length - 1];
    const last = run && run[run.length - 1];
    if (leaf && last && last.leaf && last.name === s.name && last.depth === s.depth && last.parentSpanId === s.parentSpanId) {
      run.push({ ...s, leaf });
    } else {
      out.push([{ ...s, leaf }]);
    }
  });
  return out;
}

// The colour family of a span's process (the bars' data-service picks it in hud.css).
function family(service) {
  if (service.startsWith('temporal')) return 'temporal';
  return ['api', 'hotpath', 'brain'].includes(service) ? service : 'other';
}

// A trace's identity for "did it change?": the spans and how long each lasted.
function signature(trace) {
  if (!trace) return 'none';
  return `${trace.durationNanos}|${trace.spans.map((s) => `${s.spanId}:${s.durationNanos}`).join(',')}`;
}

export function mountOrderDetail(root) {
  root.setAttribute('role', 'dialog');
  root.setAttribute('aria-label', 'Order detail');
  const title = el('h2', {}, 'Order');
  const terms = el('span', { id: 'order-detail-terms' });
  const statusLine = el('div', { id: 'order-detail-status', role: 'status', 'aria-live': 'polite' });
  const meta = el('div', { id: 'order-detail-meta', class: 'dim' });
  const ruler = el('div', { id: 'trace-ruler' });
  const rowsBox = el('div', { id: 'trace-waterfall', role: 'list' });
  const refreshButton = el('button', { type: 'button', id: 'order-detail-refresh', title: 'Ask the floor again' }, 'Refresh');
  root.append(
    el('div', { class: 'overlay-head' }, el('span', { class: 'head-left' }, title, terms),
      el('span', {}, refreshButton,
        el('button', { type: 'button', class: 'close', title: 'Close (Esc)', onclick: () => close() }, '×'))),
    meta,
    statusLine,
    el('div', { id: 'trace-head' }, el('span', {}, 'Span'), el('span', {}, 'Process'), ruler, el('span', { class: 'num' }, 'Took')),
    rowsBox,
  );

  let shownId = null;
  let trace = null;
  let shownSignature = null;
  let timer = null;
  let loading = null;
  const expanded = new Set(); // span ids whose attributes are shown
  const openGroups = new Set(); // first span ids of runs listed one by one

  function say(state, text) {
    statusLine.dataset.state = state;
    statusLine.textContent = text;
  }

  function renderOrder(o) {
    if (!o) {
      terms.textContent = '';
      return;
    }
    const state = uiState(o.state);
    const price = o.limitPrice ? ` LMT ${o.limitPrice}` : ' MKT';
    const fill = o.filledQuantity ? ` · filled ${o.filledQuantity}${o.averageFillPrice ? ` @ ${o.averageFillPrice}` : ''}` : '';
    terms.replaceChildren(
      el('span', { class: `side ${o.side === 'BUY' ? 'buy' : 'sell'}` }, o.side),
      ` ${o.quantity} ${o.symbol}${price} `,
      el('span', { class: 'chip', dataset: { state } }, LABEL[state] || state),
      fill,
    );
  }

  function renderRuler(total) {
    ruler.replaceChildren(...Array.from({ length: TICKS + 1 }, (_, i) => {
      const tick = el('span', { class: 'tick' }, duration((total * i) / TICKS));
      tick.style.left = `${(100 * i) / TICKS}%`;
      return tick;
    }));
  }

  function attributesOf(span) {
    return el('dl', { class: 'span-attrs' },
      el('dt', {}, 'trace'), el('dd', {}, span.traceId),
      el('dt', {}, 'span'), el('dd', {}, span.spanId),
      ...span.attributes.flatMap((a) => [el('dt', {}, a.key), el('dd', {}, a.value)]));
  }

  function spanRow(span, total) {
    const bar = el('span', { class: 'span-bar' });
    // Placed through the CSSOM: the page's Content-Security-Policy allows no inline style attributes.
    bar.style.left = `${(100 * span.startOffsetNanos) / total}%`;
    bar.style.width = `${(100 * span.durationNanos) / total}%`;
    const name = el('span', { class: 'span-name', title: span.name }, span.name);
    name.style.paddingLeft = `${span.depth * 12}px`;
    const row = el('div', {
      class: 'span-row',
      role: 'listitem',
      tabindex: '0',
      dataset: { spanId: span.spanId, depth: String(span.depth), status: span.status, service: family(span.service) },
      title: `${span.name} (${span.service}): ${duration(span.durationNanos)} at +${duration(span.startOffsetNanos)}`,
      onclick: () => toggle(span.spanId),
      onkeydown: (event) => {
        if (event.key === 'Enter') toggle(span.spanId);
      },
    },
    name,
    el('span', { class: 'span-service' }, span.service),
    el('span', { class: 'span-track' }, bar),
    el('span', { class: 'span-duration num' }, duration(span.durationNanos)));
    return expanded.has(span.spanId) ? [row, attributesOf(span)] : [row];
  }

  function renderTrace() {
    if (!trace) {
      ruler.replaceChildren();
      rowsBox.replaceChildren();
      meta.textContent = '';
      return;
    }
    // A trace of one instant still draws: its bars start at 0 and have their minimum width.
    const total = Math.max(trace.durationNanos, 1);
    renderRuler(trace.durationNanos);
    rowsBox.replaceChildren(...runs(trace.spans).flatMap((run) => (
      run.length >= GROUPED && !openGroups.has(run[0].spanId) ? [groupRow(run, total)] : run.flatMap((s) => spanRow(s, total)))));
    const traces = trace.traceIds.length === 1 ? '1 trace' : `${trace.traceIds.length} traces`;
    meta.textContent = `${trace.commandId} · ${trace.spans.length} spans in ${traces} · ${duration(trace.durationNanos)} from `
      + `${new Date(trace.startedAt).toLocaleTimeString([], { hour12: false })}${trace.truncated ? ' · more spans not shown' : ''}`;
  }

  // A run of sibling leaves of one name (a request's database queries, say) as one row: a bar
  // for each, the time they took together; a click lists them.
  function groupRow(run, total) {
    const first = run[0];
    const took = run.reduce((sum, s) => sum + s.durationNanos, 0);
    const failed = run.some((s) => s.status === 'error');
    const track = el('span', { class: 'span-track' });
    for (const s of run) {
      const bar = el('span', { class: 'span-bar' });
      bar.style.left = `${(100 * s.startOffsetNanos) / total}%`;
      bar.style.width = `${(100 * s.durationNanos) / total}%`;
      track.append(bar);
    }
    const name = el('span', { class: 'span-name', title: `${run.length} × ${first.name}: click to list them` }, `${first.name} × ${run.length}`);
    name.style.paddingLeft = `${first.depth * 12}px`;
    return el('div', {
      class: 'span-row group',
      role: 'listitem',
      tabindex: '0',
      dataset: { spanId: first.spanId, depth: String(first.depth), status: failed ? 'error' : 'ok', service: family(first.service), group: String(run.length) },
      title: `${run.length} × ${first.name} (${first.service}): ${duration(took)} together`,
      onclick: () => toggle(first.spanId, openGroups),
      onkeydown: (event) => {
        if (event.key === 'Enter') toggle(first.spanId, openGroups);
      },
    },
    name,
    el('span', { class: 'span-service' }, first.service),
    track,
    el('span', { class: 'span-duration num' }, `Σ ${duration(took)}`));
  }

  function toggle(spanId, set = expanded) {
    if (set.has(spanId)) set.delete(spanId);
    else set.add(spanId);
    renderTrace();
  }

  async function load() {
    const id = shownId;
    if (!id) return;
    try {
      const data = await gql(DETAIL, { id, commandId: id });
      if (id !== shownId) return; // another order was opened meanwhile
      renderOrder(data.order);
      trace = data.orderTrace;
      const sig = signature(trace);
      if (sig !== shownSignature) {
        shownSignature = sig;
        renderTrace();
      }
      if (trace) say('done', '');
      else say('empty', 'No spans of this order yet: the floor stores them a few seconds after they end (or they were pruned).');
    } catch (err) {
      if (id === shownId) say('error', `Timeline not loaded: ${err.message}`);
    }
  }

  function refresh() {
    loading = load();
    return loading;
  }

  function open(id) {
    if (!id) return Promise.resolve();
    if (id !== shownId) {
      shownId = id;
      trace = null;
      shownSignature = null;
      expanded.clear();
      openGroups.clear();
      renderOrder(null);
      renderTrace();
      say('loading', 'Loading…');
    }
    root.hidden = false;
    clearInterval(timer);
    timer = setInterval(refresh, REFRESH_MS);
    return refresh();
  }

  function close() {
    root.hidden = true;
    clearInterval(timer);
    timer = null;
    shownId = null;
  }

  refreshButton.addEventListener('click', refresh);
  // Esc closes it with the other overlays (hotkeys.js clicks a close button of an open panel).
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !root.hidden) close();
  });
  onNext('order-detail', (id) => open(id));
  // A change of the shown order (a fill, its end) is worth asking at once.
  let seenRow = null;
  store.on('orders', (rows) => {
    if (!shownId || root.hidden || !rows) return;
    const row = rows.get(shownId);
    const now = row ? `${shownId}/${row.state}/${row.filledQuantity}` : null;
    if (now && now !== seenRow) {
      seenRow = now;
      refresh();
    }
  });

  window.hud.orderDetail = {
    open,
    close,
    refresh,
    shown: () => shownId,
    // The spans as drawn: what a test compares with the API's answer.
    spans: () => [...rowsBox.querySelectorAll('.span-row')].map((row) => ({
      spanId: row.dataset.spanId,
      group: Number(row.dataset.group || 1),
      depth: Number(row.dataset.depth),
      status: row.dataset.status,
      name: row.querySelector('.span-name').textContent,
      duration: row.querySelector('.span-duration').textContent,
      left: row.querySelector('.span-bar').style.left,
      width: row.querySelector('.span-bar').style.width,
    })),
  };
}
