// The settings panel: the trader's passkeys, each marked synced (a copy of it may live on other
// devices and cannot be told from it) or device-bound, with when it was last used; and adding a
// passkey: two ceremonies, first a passkey the trader already has confirms this addition (the
// server derives the registration from that confirmation), then the new authenticator registers.
import * as store from './store.js';
import { gql } from './gql.js';
import { el, byId } from './dom.js';
import { assertPasskey, createPasskey, ceremonyMessage } from './passkey.js';
import { ME } from './app.js';

const BEGIN = `mutation { beginAddPasskey { __typename
  ... on CeremonyChallenge { challengeId optionsJson } ... on WebAuthnRefused { reason detail } } }`;
const CONFIRM = `mutation($c: String!, $cred: String!) { confirmAddPasskey(challengeId: $c, credential: $cred) {
  __typename ... on CeremonyChallenge { challengeId optionsJson } ... on WebAuthnRefused { reason detail } } }`;
const FINISH = `mutation($c: String!, $cred: String!) { finishAddPasskey(challengeId: $c, credential: $cred) {
  __typename ... on Authenticator { credentialId synced } ... on WebAuthnRefused { reason detail } } }`;

function when(iso) {
  return iso ? new Date(iso).toLocaleString([], { hour12: false }) : 'never';
}

export function mountSettings(root) {
  const list = el('ul', { id: 'passkeys' });
  const add = el('button', { id: 'add-passkey', type: 'button', class: 'primary' }, 'Add a passkey');
  const statusLine = el('div', { id: 'settings-status', role: 'status', 'aria-live': 'polite' });
  const everyOrder = el('p', { id: 'step-up-setting', class: 'dim' });
  root.append(
    el('div', { class: 'overlay-head' }, el('h2', {}, 'Passkeys'),
      el('button', { type: 'button', class: 'close', title: 'Close (Esc)', onclick: () => toggle(false) }, '×')),
    list,
    el('div', { class: 'actions' }, add),
    statusLine,
    everyOrder,
  );
  const toggleButton = byId('settings-toggle');

  function toggle(show = root.hidden) {
    root.hidden = !show;
    toggleButton.setAttribute('aria-expanded', String(show));
  }

  function say(state, text) {
    statusLine.dataset.state = state;
    statusLine.textContent = text;
  }

  function render(me) {
    if (!me) return;
    const grant = store.latest('grant');
    list.replaceChildren(...me.authenticators.map((a) => el('li', { dataset: { credentialId: a.credentialId, synced: String(a.synced) } },
      el('span', { class: 'kind' }, a.synced ? 'synced passkey' : 'device-bound'),
      el('code', { title: a.credentialId }, `${a.credentialId.slice(0, 12)}…`),
      grant && grant.credentialId === a.credentialId ? el('span', { class: 'armed-by' }, 'armed this session') : null,
      el('span', { class: 'dim' }, `added ${when(a.createdAt)} · last used ${when(a.lastUsedAt)} · count ${a.signCount}${a.transports.length ? ` · ${a.transports.join(', ')}` : ''}`),
    )));
    everyOrder.textContent = me.stepUpEveryOrder
      ? 'Every order asks your authenticator (step-up on every Execute).'
      : 'Orders within your arming grant need no further ceremony.';
  }

  // One browser ceremony; null (and the reason said) when the authenticator did not answer.
  async function ceremony(call, optionsJson) {
    try {
      return await call(optionsJson);
    } catch (err) {
      say('refused', `Not added: ${ceremonyMessage(err)}`);
      return null;
    }
  }

  function refused(answer) {
    say('refused', `Not added: ${answer.detail} (${answer.reason})`);
  }

  async function addPasskey() {
    add.disabled = true;
    try {
      say('working', 'Confirm with a passkey you already have…');
      const begun = (await gql(BEGIN)).beginAddPasskey;
      if (begun.__typename !== 'CeremonyChallenge') return refused(begun);
      const confirmation = await ceremony(assertPasskey, begun.optionsJson);
      if (!confirmation) return undefined;
      const opened = (await gql(CONFIRM, { c: begun.challengeId, cred: confirmation })).confirmAddPasskey;
      if (opened.__typename !== 'CeremonyChallenge') return refused(opened);
      say('working', 'Now register the new authenticator…');
      const credential = await ceremony(createPasskey, opened.optionsJson);
      if (!credential) return undefined;
      const done = (await gql(FINISH, { c: opened.challengeId, cred: credential })).finishAddPasskey;
      if (done.__typename !== 'Authenticator') return refused(done);
      say('done', `Added a ${done.synced ? 'synced passkey' : 'device-bound passkey'}.`);
      store.publish('me', (await gql(ME)).me);
    } catch (err) {
      say('error', `Not added: ${err.message}`);
    } finally {
      add.disabled = false;
    }
    return undefined;
  }

  toggleButton.addEventListener('click', () => toggle());
  add.addEventListener('click', addPasskey);
  store.on('me', render);
  store.on('grant', () => render(store.latest('me')));
}
