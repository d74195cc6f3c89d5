// The HUD's one connection to the floor: queries and mutations over HTTP (same-origin cookie),
// subscriptions over a single graphql-ws client (graphql-transport-ws) shared by every feed.
import { createClient } from '/vendor/graphql-ws/client.js';
import { noteServerDate } from './clock.js';

export class GqlError extends Error {
  constructor(messages, codes) {
    super(messages.join('; '));
    this.messages = messages;
    this.codes = codes;
  }
}

export async function gql(query, variables = {}) {
  let response;
  const sentAt = performance.now();
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
  } catch (err) {
    throw new GqlError([`the floor's API is unreachable (${err.message}); check that it runs`], ['network']);
  }
  noteServerDate(response, sentAt, performance.now()); // every answer re-measures the server's clock
  let body;
  try {
    body = await response.json();
  } catch {
    throw new GqlError([`the API answered ${response.status} without JSON`], [`http.${response.status}`]);
  }
  if (body.errors && body.errors.length) {
    throw new GqlError(
      body.errors.map((e) => e.message),
      body.errors.map((e) => (e.extensions && e.extensions.code) || 'graphql'),
    );
  }
  return body.data;
}

const listeners = new Set();
let connection = { state: 'connecting', code: null, reason: null };
let receivedAt = 0;

function setConnection(next) {
  connection = next;
  for (const fn of listeners) fn(connection);
}

export function onConnection(fn) {
  listeners.add(fn);
  fn(connection);
  return () => listeners.delete(fn);
}

// The moment the message being handled arrived (performance.now()), for the latency overlay.
export function stamp() {
  return receivedAt;
}

// The receipt stamp is taken by a listener the socket gets before graphql-ws sets its own
// onmessage: graphql-ws calls its `message` event listeners only after it has dispatched the
// message to the subscription, so a stamp taken there would date the next message, not this one.
class StampedWebSocket extends WebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', () => {
      receivedAt = performance.now();
    });
  }
}

// A closed session (4403) or a refused protocol will not heal by retrying; anything else does.
const FATAL = new Set([4400, 4401, 4403, 4406]);

const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
const client = createClient({
  url: `${scheme}//${location.host}/graphql`,
  webSocketImpl: StampedWebSocket,
  lazy: true,
  keepAlive: 10_000,
  retryAttempts: Infinity,
  shouldRetry: (event) => !(event && FATAL.has(event.code)),
  retryWait: async (retries) => {
    const ms = Math.min(5_000, 250 * 2 ** retries) * (0.75 + Math.random() / 2);
    await new Promise((resolve) => setTimeout(resolve, ms));
  },
  on: {
    connecting: () => setConnection({ state: 'connecting', code: null, reason: null }),
    connected: () => setConnection({ state: 'open', code: null, reason: null }),
    closed: (event) => setConnection({ state: 'closed', code: event && event.code, reason: event && event.reason }),
  },
});

// One subscription; graphql-ws re-sends it after a reconnect (a feed gets a fresh snapshot).
export function live(query, variables, onData, { onError } = {}) {
  return client.subscribe(
    { query, variables },
    {
      next: (message) => {
        if (message.errors && message.errors.length) {
          if (onError) onError(new GqlError(message.errors.map((e) => e.message), message.errors.map((e) => (e.extensions && e.extensions.code) || 'graphql')));
          return;
        }
        onData(message.data);
      },
      error: (err) => {
        if (!onError) return;
        if (Array.isArray(err)) onError(new GqlError(err.map((e) => e.message), err.map(() => 'graphql')));
        else onError(err instanceof Error ? err : new GqlError([`connection closed (${err && err.code})`], ['ws']));
      },
      complete: () => {},
    },
  );
}
