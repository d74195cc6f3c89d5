// A small publish/subscribe store: each part of the HUD publishes what it owns (see the topics in
// README "The HUD") and listens to what it draws; no part reaches into another's DOM.
const values = new Map();
const subscribers = new Map();

export function publish(topic, value) {
  values.set(topic, value);
  const fns = subscribers.get(topic);
  if (!fns) return;
  for (const fn of [...fns]) {
    try {
      fn(value);
    } catch (err) {
      console.error(`store: a listener of ${topic} failed`, err);
    }
  }
}

// Calls fn with the newest value now (if any), then on every publish; returns the unsubscribe.
export function on(topic, fn) {
  if (!subscribers.has(topic)) subscribers.set(topic, new Set());
  subscribers.get(topic).add(fn);
  if (values.has(topic)) fn(values.get(topic));
  return () => subscribers.get(topic).delete(fn);
}

export function latest(topic) {
  return values.get(topic);
}
