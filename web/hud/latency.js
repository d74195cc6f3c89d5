// The latency overlay: WebSocket message -> the paint that showed it, for the book. The ladder
// records a sample per book message (receipt stamp from gql.js stamp(), paint time from the
// frame loop's afterPaint); with painting switched off (hud.paint(false)) a sample is receipt ->
// handler done, the baseline. Also frames dropped (frame_loop.js) and sequence gaps.
import { frameStats, resetFrameStats } from './frame_loop.js';

const MAX_SAMPLES = 200_000; // ~3 minutes at 1,000 messages/s; older samples are dropped
let samples = [];
let venueSamples = []; // the venue's time of a book message -> its arrival in the page
let gaps = 0;
let mode = 'paint'; // what the samples measure: 'paint' or 'handler'

export function sample(ms) {
  if (samples.length >= MAX_SAMPLES) samples = samples.slice(MAX_SAMPLES / 2);
  samples.push(ms);
}

export function venueSample(ms) {
  if (venueSamples.length >= MAX_SAMPLES) venueSamples = venueSamples.slice(MAX_SAMPLES / 2);
  venueSamples.push(ms);
}

export function gap() {
  gaps += 1;
}

export function setMode(m) {
  mode = m;
}

// Nearest rank: the figure is a sample that was measured.
function percentiles(values) {
  const sorted = Float64Array.from(values).sort();
  const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : null);
  return { sorted, at };
}

export function stats() {
  const { sorted, at } = percentiles(samples);
  const venue = percentiles(venueSamples);
  const frames = frameStats();
  return {
    venueP50: venue.at(0.5),
    venueP99: venue.at(0.99),
    count: sorted.length,
    p50: at(0.5),
    p99: at(0.99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
    dropped: frames.dropped,
    longFrames: frames.longFrames,
    frames: frames.frames,
    worstFrameMs: frames.worstFrameMs,
    meanFrameMs: frames.frames ? frames.paintMs / frames.frames : null,
    gaps,
    mode,
  };
}

export function reset() {
  samples = [];
  venueSamples = [];
  gaps = 0;
  resetFrameStats();
}

function fmt(ms) {
  return ms === null ? '—' : ms.toFixed(1);
}

function render(overlay) {
  const s = stats();
  const what = s.mode === 'paint' ? 'message → paint' : 'message → handler (painting off)';
  overlay.replaceChildren(
    line('BOOK LATENCY', what),
    line('p50 / p99 / max', `${fmt(s.p50)} / ${fmt(s.p99)} / ${fmt(s.max)} ms`),
    line('messages', String(s.count)),
    line('venue → arrival p50 / p99', `${fmt(s.venueP50)} / ${fmt(s.venueP99)} ms`),
    line('frames dropped', `${s.dropped} of ${s.frames}${s.longFrames ? ` (${s.longFrames} over 50 ms)` : ''}`),
    line('sequence gaps', String(s.gaps)),
  );
}

function line(label, value) {
  const row = document.createElement('div');
  const l = document.createElement('span');
  l.className = 'dim';
  l.textContent = `${label} `;
  const v = document.createElement('span');
  v.textContent = value;
  row.append(l, v);
  return row;
}

export function mountLatency(overlay) {
  let timer = null;
  const toggle = (show = overlay.hidden) => {
    overlay.hidden = !show;
    clearInterval(timer);
    timer = null;
    if (show) {
      render(overlay);
      timer = setInterval(() => render(overlay), 500); // text, not a per-frame redraw
    }
    document.getElementById('latency-toggle')?.setAttribute('aria-pressed', String(show));
  };
  document.getElementById('latency-toggle')?.addEventListener('click', () => toggle());
  window.hud.latency = { stats, reset, samples: () => samples.slice(), venueSamples: () => venueSamples.slice(), toggle };
  registerKey('L', 'Latency overlay', () => toggle());
}

// The desk's hotkey registry when it is there (its help overlay lists the key); else a plain
// key listener, so the key works on a desk without it.
export async function registerKey(key, description, fn) {
  try {
    const { hotkey } = await import('./hotkeys.js');
    hotkey(key, description, fn);
  } catch {
    window.addEventListener('keydown', (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey || e.target.closest?.('input, select, textarea')) return;
      if (e.key.toUpperCase() === key) fn();
    });
  }
}
