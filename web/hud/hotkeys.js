// The HUD's hotkeys: one registry every part adds its keys to, one keydown listener, and the
// help overlay (?) that lists them. A key never fires while the trader types in a field or while
// a dialog asks something: a typed "b" must not stage a buy.
import { el, byId } from './dom.js';

const registry = new Map(); // normalised key -> {key, description, fn}
let overlay = null;

function normalise(key) {
  return key.length === 1 ? key.toUpperCase() : key;
}

export function hotkey(key, description, fn) {
  registry.set(normalise(key), { key, description, fn });
  if (overlay && !overlay.hidden) renderHelp();
}

function typing(target) {
  return Boolean(target && target.closest && target.closest('input, select, textarea, [contenteditable=""], [contenteditable="true"]'));
}

const LABELS = { ArrowUp: '↑', ArrowDown: '↓', Escape: 'Esc' };

function renderHelp() {
  const rows = [...registry.values()].map(({ key, description }) =>
    el('tr', { dataset: { key } }, el('td', {}, el('kbd', {}, LABELS[key] || key)), el('td', {}, description)));
  overlay.replaceChildren(
    el('div', { class: 'overlay-head' }, el('h2', {}, 'Hotkeys'), el('span', { class: 'dim' }, 'never while typing in a field · Esc closes')),
    el('table', { class: 'dense' }, el('tbody', {}, ...rows)),
  );
}

export function toggleHelp(show = overlay.hidden) {
  if (show) renderHelp();
  overlay.hidden = !show;
}

// Escape: whatever is open on top of the desk closes (dialogs, help, settings).
function closeEverything() {
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close('escape');
  overlay.hidden = true;
  const settings = byId('settings-panel');
  if (settings && !settings.hidden) byId('settings-toggle').click();
}

function onKeyDown(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
  if (event.key === 'Escape') {
    closeEverything();
    return;
  }
  // A held key repeats keydown: B held down must stage once, not again after every answer.
  if (event.repeat) return;
  if (typing(event.target) || document.querySelector('dialog[open]')) return;
  const entry = registry.get(normalise(event.key));
  if (!entry) return;
  event.preventDefault();
  try {
    entry.fn(event);
  } catch (err) {
    console.error(`hotkey ${entry.key} failed`, err);
  }
}

export function mountHotkeys(root) {
  overlay = root;
  overlay.setAttribute('role', 'dialog');
  overlay.setAttribute('aria-label', 'Hotkeys');
  document.addEventListener('keydown', onKeyDown);
  byId('help-toggle').addEventListener('click', () => toggleHelp());
  overlay.addEventListener('click', () => toggleHelp(false));
  hotkey('?', 'This help', () => toggleHelp());
  hotkey('Escape', 'Close dialogs and overlays', closeEverything);
  // C (re-centre) and L (latency overlay) are registered by the ladder and latency parts.
  window.hud.hotkeys = { keys: () => [...registry.values()].map(({ key, description }) => ({ key, description })) };
}
