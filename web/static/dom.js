/* DOM building, text only: every string becomes a Text node or textContent, never HTML.
 *
 * The page runs under Content-Security-Policy script-src 'self' and style-src 'self': no inline
 * script, no inline style, no eval. The only URLs the page makes are "#cite-…" fragments and
 * "/doc/…" paths built with encodeURIComponent; `h` refuses event-handler, style, srcdoc and
 * formaction attributes outright.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';
const FORBIDDEN_ATTR = /^(on|style$|srcdoc$|formaction$)/i;

export const reduceMotion = window.matchMedia('(prefers-reduced-motion: reduce)');
export const narrowScreen = window.matchMedia('(max-width: 799.98px)');
// On touch devices focusing the textarea pops the keyboard up over the answer: don't do it unasked.
export const finePointer = window.matchMedia('(hover: hover) and (pointer: fine)');

/** An element with props (class, text, dataset, on, attributes) and children (nodes or strings). */
export function h(tag, props, children) {
  const node = document.createElement(tag);
  if (props) {
    for (const key of Object.keys(props)) {
      const value = props[key];
      if (value == null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = String(value);
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key === 'on') {
        for (const ev of Object.keys(value)) node.addEventListener(ev, value[ev]);
      } else {
        if (FORBIDDEN_ATTR.test(key)) throw new Error('refusing attribute ' + key);
        node.setAttribute(key, value === true ? '' : String(value));
      }
    }
  }
  if (children != null) add(node, children);
  return node;
}

/** Append children (nodes, or strings as Text nodes; null and false are skipped). */
export function add(parent, children) {
  const list = Array.isArray(children) ? children : [children];
  for (const child of list) {
    if (child == null || child === false) continue;
    parent.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return parent;
}

const ICONS = {
  up: [
    'M7 10v11',
    'M15 5.9 14 10h5.8a2 2 0 0 1 1.9 2.6l-2.3 8A2 2 0 0 1 17.5 22H4a2 2 0 0 1-2-2v-8a2 2 0 0 1 2-2h2.8a2 2 0 0 0 1.8-1.1L12 2a3.1 3.1 0 0 1 3 3.9Z',
  ],
  down: [
    'M17 14V3',
    'M9 18.1 10 14H4.2a2 2 0 0 1-1.9-2.6l2.3-8A2 2 0 0 1 6.5 2H20a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2h-2.8a2 2 0 0 0-1.8 1.1L12 22a3.1 3.1 0 0 1-3-3.9Z',
  ],
  copy: [
    'M11 9h9a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2h-9a2 2 0 0 1-2-2v-9a2 2 0 0 1 2-2z',
    'M5 15H4a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2h9a2 2 0 0 1 2 2v1',
  ],
  check: ['M20 6 9 17l-5-5'],
  answer: ['M4 5a2 2 0 0 1 2-2h9l5 5v11a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2z', 'M14 3v5h5', 'M8 13h8M8 17h5'],
  notfound: ['M11 19a8 8 0 1 0 0-16 8 8 0 0 0 0 16z', 'M21 21l-4.3-4.3', 'M8.5 8.5l5 5', 'M13.5 8.5l-5 5'],
  alert: ['M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z', 'M12 7.5v5.5', 'M12 16.5h.01'],
  retry: ['M3 12a9 9 0 1 0 3-6.7L3 8', 'M3 3v5h5'],
  open: ['M15 3h6v6', 'M10 14 21 3', 'M18 13v6a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h6'],
  arrow: ['M5 12h14', 'M13 6l6 6-6 6'],
};

/** A decorative (aria-hidden) SVG icon from the fixed set above. */
export function icon(name, extraClass) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', 'icon' + (extraClass ? ' ' + extraClass : ''));
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

export function scrollBehavior() {
  return reduceMotion.matches ? 'auto' : 'smooth';
}

/** Restart a CSS animation class on `node`. */
export function replayClass(node, cls) {
  node.classList.remove(cls);
  void node.offsetWidth;
  node.classList.add(cls);
}
