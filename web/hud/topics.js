// Store helpers for topics that are requests rather than state (ladder-click, ticket): acting on
// the value already there when a part mounts would replay an old click.
import * as store from './store.js';

export function onNext(topic, fn) {
  let replay = true;
  const off = store.on(topic, (value) => {
    if (!replay) fn(value);
  });
  replay = false;
  return off;
}
