// The browser's WebAuthn calls in the JSON forms the API speaks: options as the server's
// optionsJson (toJSON() form), the credential back as JSON text of PublicKeyCredential.toJSON().
export async function createPasskey(optionsJson) {
  const options = PublicKeyCredential.parseCreationOptionsFromJSON(JSON.parse(optionsJson));
  const credential = await navigator.credentials.create({ publicKey: options });
  return JSON.stringify(credential.toJSON());
}

export async function assertPasskey(optionsJson) {
  const options = PublicKeyCredential.parseRequestOptionsFromJSON(JSON.parse(optionsJson));
  const credential = await navigator.credentials.get({ publicKey: options });
  return JSON.stringify(credential.toJSON());
}

// What the trader should read when the browser's ceremony fails (cancelled, timed out, no UV).
export function ceremonyMessage(err) {
  if (err && err.name === 'NotAllowedError') return 'The authenticator did not confirm (cancelled, timed out, or no fingerprint/PIN): try again.';
  if (err && err.name === 'InvalidStateError') return 'This authenticator is already registered.';
  if (err && err.name === 'SecurityError') return 'Passkeys need the HUD opened at http://localhost:<port>, not an IP address.';
  return `${(err && err.name) || 'Error'}: ${(err && err.message) || err}`;
}
