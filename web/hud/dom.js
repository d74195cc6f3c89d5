// Builds DOM nodes without HTML strings: text from the floor (symbols, reasons, details) is
// always text, never markup.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, '');
    else node.setAttribute(name, String(value));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export function byId(id) {
  return document.getElementById(id);
}

// Restarts a CSS animation class (the state-change pulse) even if it is still running.
export function pulse(node, className = 'pulse', ms = 450) {
  node.classList.remove(className);
  void node.offsetWidth; // a reflow, so re-adding the class starts the animation again
  node.classList.add(className);
  clearTimeout(node._pulseTimer);
  node._pulseTimer = setTimeout(() => node.classList.remove(className), ms);
}
