// The latency overlay: WebSocket message -> the paint that showed it, for the book. The ladder
// records a sample per book message (receipt stamp from gql.js stamp(), paint time from the
// frame loop's afterPaint); with painting switched off (hud.paint(false)) a sample is receipt ->
// handler done, the baseline. Also frames dropped (frame_loop.js) and sequence gaps.
import { frameStats, resetFrameStats } from './frame_loop.js';

// The whole run, for the bench (samples()); ~3 minutes at 1,000 messages/s, then the older
// half is dropped.
const MAX_SAMPLES = 200_000;
// The overlay's figures: the last WINDOW_MS, at most RING samples (8 s at 1,000 messages/s),
// so a fresh regression shows at once and a refresh sorts a few thousand numbers, not the run:
// a long stall on the main thread would inflate the very p99 it reports.
const WINDOW_MS = 10_000;
const RING = 8192;

// A fixed ring of (time, value), newest overwriting oldest.
class Ring {
  constructor(n) {
    this.values = new Float64Array(n);
    this.times = new Float64Array(n);
    this.next = 0;
    this.size = 0;
  }

  push(value, t) {
    this.values[this.next] = value;
    this.times[this.next] = t;
    this.next = (this.next + 1) % this.values.length;
    this.size = Math.min(this.size + 1, this.values.length);
  }

  // The values recorded at or after `since`, sorted ascending.
  sortedSince(since) {
    const out = new Float64Array(this.size);
    let n = 0;
    for (let i = 0; i < this.size; i++) if (this.times[i] >= since) out[n++] = this.values[i];
    return out.subarray(0, n).sort();
  }

  clear() {
    this.next = 0;
    this.size = 0;
  }
}

let samples = [];
let venueSamples = []; // the venue's time of a book message -> its arrival in the page
const recent = new Ring(RING);
const recentVenue = new Ring(RING);
let gaps = 0;
let mode = 'paint'; // what the samples measure: 'paint' or 'handler'

export function sample(ms) {
  if (samples.length >= MAX_SAMPLES) samples = samples.slice(MAX_SAMPLES / 2);
  samples.push(ms);
  recent.push(ms, performance.now());
}

export function venueSample(ms) {
  if (venueSamples.length >= MAX_SAMPLES) venueSamples = venueSamples.slice(MAX_SAMPLES / 2);
  venueSamples.push(ms);
  recentVenue.push(ms, performance.now());
}

// The whole run (up to MAX_SAMPLES), for the bench: copies, outside the overlay's refresh.
export function allSamples() {
  return samples.slice();
}

export function allVenueSamples() {
  return venueSamples.slice();
}

export function gap() {
  gaps += 1;
}

export function setMode(m) {
  mode = m;
}

// Nearest rank: the figure is a sample that was measured.
function at(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : null;
}

// The overlay's figures over the last WINDOW_MS (count: the samples in it); frames and gaps
// since the last reset.
export function stats() {
  const since = performance.now() - WINDOW_MS;
  const sorted = recent.sortedSince(since);
  const venue = recentVenue.sortedSince(since);
  const frames = frameStats();
  return {
    venueP50: at(venue, 0.5),
    venueP99: at(venue, 0.99),
    count: sorted.length,
    p50: at(sorted, 0.5),
    p99: at(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
    windowMs: WINDOW_MS,
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
  recent.clear();
  recentVenue.clear();
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
    line(`messages (last ${s.windowMs / 1000} s)`, String(s.count)),
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
  window.hud.latency = { stats, reset, samples: allSamples, venueSamples: allVenueSamples, toggle };
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
