// The settings panel: the trader's passkeys, each marked synced (a copy of it may live on other
// devices and cannot be told from it) or device-bound, with when it was last used; and adding a
// passkey, which needs a live arming grant (a fresh user-verified ceremony) on the server.
import * as store from './store.js';
import { gql } from './gql.js';
import { el, byId } from './dom.js';
import { createPasskey, ceremonyMessage } from './passkey.js';
import { ME } from './app.js';

const BEGIN = `mutation { beginAddPasskey { __typename
  ... on CeremonyChallenge { challengeId optionsJson } ... on WebAuthnRefused { reason detail } } }`;
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

  async function addPasskey() {
    add.disabled = true;
    say('working', 'Waiting for your authenticator…');
    try {
      const begun = (await gql(BEGIN)).beginAddPasskey;
      if (begun.__typename !== 'CeremonyChallenge') {
        say('refused', begun.reason === 'auth.not_armed'
          ? 'Arm first: adding a passkey needs a fresh arming with one you already have.'
          : `Not added: ${begun.detail} (${begun.reason})`);
        return;
      }
      let credential;
      try {
        credential = await createPasskey(begun.optionsJson);
      } catch (err) {
        say('refused', `Not added: ${ceremonyMessage(err)}`);
        return;
      }
      const done = (await gql(FINISH, { c: begun.challengeId, cred: credential })).finishAddPasskey;
      if (done.__typename !== 'Authenticator') {
        say('refused', `Not added: ${done.detail} (${done.reason})`);
        return;
      }
      say('done', `Added a ${done.synced ? 'synced passkey' : 'device-bound passkey'}.`);
      store.publish('me', (await gql(ME)).me);
    } catch (err) {
      say('error', /beginAddPasskey|finishAddPasskey/.test(err.message)
        ? 'This floor cannot add passkeys from the HUD yet: use an enrolment link (floor traders add).'
        : `Not added: ${err.message}`);
    } finally {
      add.disabled = false;
    }
  }

  toggleButton.addEventListener('click', () => toggle());
  add.addEventListener('click', addPasskey);
  store.on('me', render);
  store.on('grant', () => render(store.latest('me')));
}
