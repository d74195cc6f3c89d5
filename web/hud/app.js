// Boots the HUD: who is signed in, then each part of the desk on its own, so one part that fails
// shows its error and the rest keeps trading.
import * as store from './store.js';
import { gql, onConnection } from './gql.js';
import { signIn, signOut } from './signin.js';

// Test and tooling hooks (see README "The HUD"): parts fill in their own.
window.hud = { store, ladder: null, latency: null, paint: () => {} };

export const ME = `query { me { name kind role accounts stepUpEveryOrder
  authenticators { credentialId createdAt lastUsedAt signCount transports backupEligible backedUp synced }
  grant { expiresAt symbols maxQuantity maxNotional credentialId } } }`;

const PARTS = [
  ['./hotkeys.js', 'mountHotkeys', '#help-overlay'],
  ['./ladder.js', 'mountLadder', '#ladder-pane'],
  ['./latency.js', 'mountLatency', '#latency-overlay'],
  ['./ticket.js', 'mountTicket', '#ticket-pane'],
  ['./interlock.js', 'mountInterlock', '#topbar'],
  ['./blotter.js', 'mountBlotter', '#blotter-pane'],
  ['./positions.js', 'mountPositions', '#positions-pane'],
  ['./breaker.js', 'mountBreaker', '#breaker-banner'],
  ['./settings.js', 'mountSettings', '#settings-panel'],
  ['./order_detail.js', 'mountOrderDetail', '#order-detail'],
];

async function whoAmI() {
  try {
    return (await gql(ME)).me;
  } catch (err) {
    if (err.codes && err.codes.includes('auth.unauthenticated')) return null;
    throw err;
  }
}

function moduleFailed(path, err) {
  console.error(`HUD part ${path} failed`, err);
  const box = document.getElementById('module-errors');
  const line = document.createElement('div');
  line.textContent = `${path}: ${err && err.message ? err.message : err} — reload the page; if it persists, see the browser console.`;
  box.append(line);
}

async function mountParts() {
  for (const [path, name, selector] of PARTS) {
    try {
      const part = await import(path);
      await part[name](document.querySelector(selector));
    } catch (err) {
      moduleFailed(path, err);
    }
  }
}

function chooseInstrument(me) {
  const params = new URLSearchParams(location.search);
  const grantSymbols = me.grant && me.grant.symbols;
  store.publish('account', params.get('account') || me.accounts.find((a) => a !== '*') || 'DU1234567');
  store.publish('symbol', (params.get('symbol') || (grantSymbols && grantSymbols[0]) || 'AAPL').toUpperCase());
}

async function boot() {
  let me = await whoAmI();
  if (!me) {
    await signIn(document.getElementById('signin-screen'));
    me = await whoAmI();
  }
  document.body.dataset.signedIn = 'true';
  document.getElementById('desk').hidden = false;
  document.getElementById('trader-name').textContent = me.name;
  document.getElementById('signout').onclick = signOut;
  store.publish('me', me);
  store.publish('grant', me.grant);
  chooseInstrument(me);
  store.on('symbol', (s) => (document.getElementById('symbol-label').textContent = s));
  store.on('account', (a) => (document.getElementById('account-label').textContent = a));
  onConnection(({ state, code }) => {
    const el = document.getElementById('connection');
    el.dataset.state = state;
    el.textContent = state === 'closed' && code ? `closed ${code}` : state;
    if (code === 4403) location.reload(); // the session ended: back to sign-in
  });
  await mountParts();
  // Every part has mounted (or shown its error): what a test or a tool waits for before using the desk.
  document.body.dataset.ready = 'true';
}

boot().catch((err) => moduleFailed('app.js', err));
