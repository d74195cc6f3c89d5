// The enrolment page: registers a passkey for the trader the link was made for, through the
// GraphQL ceremony mutations. The token travels in the URL's fragment, which the browser never
// sends to a server; it is taken out of the address bar at once.

const BEGIN = `mutation($t: String!) { beginRegistration(enrolmentToken: $t) {
  __typename ... on CeremonyChallenge { challengeId optionsJson }
  ... on WebAuthnRefused { reason detail } } }`;
const FINISH = `mutation($t: String!, $c: String!, $cred: String!) {
  finishRegistration(enrolmentToken: $t, challengeId: $c, credential: $cred) {
  __typename ... on Authenticator { credentialId synced }
  ... on WebAuthnRefused { reason detail } } }`;

const button = document.getElementById("register");
const status = document.getElementById("status");
const token = new URLSearchParams(location.hash.slice(1)).get("token");
history.replaceState(null, "", location.pathname);

function show(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

async function graphql(query, variables) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(body.errors.map((e) => e.message).join("; "));
  return body.data;
}

async function register() {
  button.disabled = true;
  show("working", "Waiting for your authenticator…");
  try {
    const begun = (await graphql(BEGIN, { t: token })).beginRegistration;
    if (begun.__typename === "WebAuthnRefused") return refused(begun);
    const options = PublicKeyCredential.parseCreationOptionsFromJSON(JSON.parse(begun.optionsJson));
    const credential = await navigator.credentials.create({ publicKey: options });
    const finished = (await graphql(FINISH, {
      t: token, c: begun.challengeId, cred: JSON.stringify(credential.toJSON()),
    })).finishRegistration;
    if (finished.__typename === "WebAuthnRefused") return refused(finished);
    const kind = finished.synced ? "a synced passkey" : "a device-bound passkey";
    show("done", `Registered ${kind}. You can close this page and sign in at the HUD.`);
  } catch (error) {
    // The trader cancelled, or the browser refused (wrong address, no authenticator).
    show("error", `${error.name || "Error"}: ${error.message}`);
    button.disabled = false;
  }
}

function refused(result) {
  show("refused", `${result.detail}\n(${result.reason})`);
}

if (!token) {
  show("refused", "This page needs the enrolment link the operator gave you (…/enrol#token=…).");
} else if (!window.PublicKeyCredential) {
  show("refused", "This browser has no passkeys (WebAuthn); open the link in a current browser.");
} else {
  button.disabled = false;
  button.addEventListener("click", register);
}
