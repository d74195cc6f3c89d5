// The circuit breaker as the whole desk sees it: the state in the top bar, and while the floor is
// HALTED (or REDUCING) a banner across the HUD with what tripped it: the symbol, the drop, and how
// many orders were cancelled in how many milliseconds. Re-arming lets risk back in, so it needs an
// armed session (the server checks; the banner says what to do).
import * as store from './store.js';
import { gql, live } from './gql.js';
import { byId } from './dom.js';
import { percent } from './prices.js';

const BASE = 'state seq kind by commandId changedAt problem';
const TRIP = 'trip { symbol drop referencePrice price cancelledOrders cancelMillis reason }';
// A flash crash says itself through its figures; the other trips have none to show.
const TRIP_REASON = { flash_crash: '', manual: 'manual trip', unverified_entry: 'its ledger entry does not verify' };
const subscription = (fields) => `subscription { breakerState { ${fields} } }`;
const REARM = `mutation { rearmBreaker { __typename
  ... on BreakerCommandSent { commandId kind } ... on NotArmed { reason detail } ... on Invalid { reason detail } } }`;

// What the trader reads: "AAPL −10.4 % (187.00 → 167.55) · 12 orders cancelled in 3 ms".
export function describe(b) {
  const parts = [b.state === 'HALTED' ? 'BREAKER HALTED' : `BREAKER ${b.state}`];
  const t = b.trip;
  if (t) {
    const drop = t.drop ? `${percent(t.drop)} %` : null;
    const move = t.referencePrice && t.price ? `(${t.referencePrice} → ${t.price})` : null;
    const what = [t.symbol, drop && `fell ${drop}`, move].filter(Boolean).join(' ');
    if (what) parts.push(what);
    if (t.cancelledOrders !== null && t.cancelledOrders !== undefined) {
      parts.push(`${t.cancelledOrders} order${t.cancelledOrders === 1 ? '' : 's'} cancelled${t.cancelMillis !== null && t.cancelMillis !== undefined ? ` in ${t.cancelMillis} ms` : ''}`);
    }
    if (TRIP_REASON[t.reason] !== undefined) {
      if (TRIP_REASON[t.reason]) parts.push(TRIP_REASON[t.reason]);
    } else if (t.reason) parts.push(t.reason);
  } else if (b.kind) {
    parts.push(b.kind === 'breaker_tripped' ? 'tripped automatically' : b.kind.replace('_', ' '));
  }
  if (b.by) parts.push(`by ${b.by}`);
  if (b.changedAt) parts.push(`at ${new Date(b.changedAt).toLocaleTimeString([], { hour12: false })}`);
  if (b.problem) parts.push(`ledger entry does not verify: ${b.problem}`);
  return parts.join(' · ');
}

export function mountBreaker(root) {
  const text = byId('breaker-text');
  const rearm = byId('rearm');
  const topState = byId('breaker-state');
  const rearmStatus = document.createElement('span');
  rearmStatus.id = 'rearm-status';
  root.append(rearmStatus);

  function show(b) {
    topState.dataset.state = b.state;
    topState.textContent = b.state;
    topState.title = describe(b);
    const tripped = b.state !== 'ACTIVE';
    root.hidden = !tripped;
    root.dataset.state = b.state;
    document.body.dataset.breaker = b.state;
    if (tripped) text.textContent = describe(b);
    else rearmStatus.textContent = '';
    store.publish('breaker', b);
  }

  // An API without Breaker.trip answers the first subscription with a schema error: follow
  // what Breaker has instead.
  let fields = `${BASE} ${TRIP}`;
  function follow() {
    live(subscription(fields), {}, ({ breakerState }) => show(breakerState), {
      onError: (err) => {
        const schemaLacksTrip = fields !== BASE && (err.messages || []).some((m) => /trip/.test(m));
        if (schemaLacksTrip) fields = BASE;
        setTimeout(follow, schemaLacksTrip ? 0 : 1000);
      },
    });
  }

  rearm.addEventListener('click', async () => {
    rearm.disabled = true;
    rearmStatus.textContent = 'Re-arming…';
    try {
      const r = (await gql(REARM)).rearmBreaker;
      rearmStatus.dataset.state = r.__typename;
      if (r.__typename === 'BreakerCommandSent') rearmStatus.textContent = 'Re-arm sent: the banner clears when the floor is ACTIVE.';
      else if (r.__typename === 'NotArmed') rearmStatus.textContent = 'Arm first (Arm, top right): re-arming the floor needs an armed session.';
      else rearmStatus.textContent = `Not re-armed: ${r.detail} (${r.reason})`;
    } catch (err) {
      rearmStatus.dataset.state = 'error';
      rearmStatus.textContent = `Not re-armed: ${err.message}`;
    } finally {
      rearm.disabled = false;
    }
  });
  follow();
}
