// Sign-in with a passkey (beginLogin/finishLogin over HTTP: the session cookie is HttpOnly and
// set by the answer), and sign-out.
import { gql } from './gql.js';
import { assertPasskey, ceremonyMessage } from './passkey.js';

const BEGIN = `mutation { beginLogin { __typename
  ... on CeremonyChallenge { challengeId optionsJson }
  ... on WebAuthnRefused { reason detail } } }`;
const FINISH = `mutation($c: String!, $cred: String!) { finishLogin(challengeId: $c, credential: $cred) {
  __typename ... on SignedIn { trader } ... on WebAuthnRefused { reason detail } } }`;

function show(status, state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

// Resolves once the trader is signed in.
export function signIn(root) {
  const button = root.querySelector('#signin');
  const status = root.querySelector('#signin-status');
  root.hidden = false;
  if (!window.PublicKeyCredential) {
    show(status, 'refused', 'This browser has no passkeys (WebAuthn); use a current browser.');
    button.disabled = true;
    return new Promise(() => {});
  }
  return new Promise((resolve) => {
    button.onclick = async () => {
      button.disabled = true;
      show(status, 'working', 'Waiting for your authenticator…');
      try {
        const begun = (await gql(BEGIN)).beginLogin;
        if (begun.__typename !== 'CeremonyChallenge') throw new Error(`${begun.detail} (${begun.reason})`);
        const credential = await assertPasskey(begun.optionsJson);
        const done = (await gql(FINISH, { c: begun.challengeId, cred: credential })).finishLogin;
        if (done.__typename !== 'SignedIn') throw new Error(`${done.detail} (${done.reason})`);
        show(status, 'done', `Signed in as ${done.trader}.`);
        root.hidden = true;
        resolve(done.trader);
      } catch (err) {
        show(status, 'error', err instanceof Error && err.name === 'Error' ? err.message : ceremonyMessage(err));
        button.disabled = false;
      }
    };
  });
}

export async function signOut() {
  try {
    await gql('mutation { logout { signedOut } }');
  } finally {
    location.reload();
  }
}
