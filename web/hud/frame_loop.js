// The page's one animation-frame loop. A part marks itself dirty (requestPaint); the next frame
// calls each dirty painter once, however many messages arrived since. afterPaint(fn) runs fn
// just after the frame that is being drawn: JavaScript cannot see the paint itself, so the
// frame callback posts a MessageChannel message, whose handler runs once the frame is out.
//
// It also counts frames dropped while work was waiting: every vsync (60 Hz) that passed
// between a paint request and the frame that served it is a frame the screen did not update;
// and, where the browser has the Long Animation Frames API, frames that took over 50 ms.

const FRAME_MS = 1000 / 60;

const dirty = new Set();
let scheduled = false;
let waitingSince = null; // performance.now() of the first paint request since the last frame
let afterFns = [];
const counters = { frames: 0, dropped: 0, longFrames: 0, worstFrameMs: 0, paintMs: 0 };

const channel = new MessageChannel();
channel.port1.onmessage = () => {
  const t = performance.now();
  const fns = afterFns;
  afterFns = [];
  for (const fn of fns) fn(t);
};

export function requestPaint(painter) {
  dirty.add(painter);
  if (waitingSince === null && !document.hidden) waitingSince = performance.now();
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(frame);
  }
}

// Inside a painter: fn(t) runs after this frame, t = performance.now() then.
export function afterPaint(fn) {
  afterFns.push(fn);
}

export function frameStats() {
  return { ...counters };
}

export function resetFrameStats() {
  counters.frames = counters.dropped = counters.longFrames = counters.worstFrameMs = counters.paintMs = 0;
}

function frame(now) {
  scheduled = false;
  if (waitingSince !== null) {
    // `now` is this frame's start; a request made more than a frame before it missed a vsync.
    counters.dropped += Math.max(0, Math.floor((now - waitingSince) / FRAME_MS));
    waitingSince = null;
  }
  counters.frames += 1;
  const painters = [...dirty];
  dirty.clear();
  const began = performance.now();
  for (const paint of painters) {
    try {
      paint(now);
    } catch (err) {
      console.error('a painter failed', err);
    }
  }
  const took = performance.now() - began;
  counters.paintMs += took;
  counters.worstFrameMs = Math.max(counters.worstFrameMs, took);
  if (afterFns.length) channel.port2.postMessage(null);
}

// A hidden tab gets no frames: a paint requested while it was hidden waited for the tab, not
// for the page, so the wait restarts when it shows again and counts no dropped frames.
if (typeof document !== 'undefined') {
  document.addEventListener('visibilitychange', () => {
    waitingSince = !document.hidden && dirty.size ? performance.now() : null;
  });
}

if (typeof PerformanceObserver !== 'undefined' && PerformanceObserver.supportedEntryTypes?.includes('long-animation-frame')) {
  new PerformanceObserver((list) => {
    counters.longFrames += list.getEntries().length;
  }).observe({ type: 'long-animation-frame' });
}
