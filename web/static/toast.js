/* Short notices: the toast at the bottom of the page (with an optional action such as Undo),
 * and a button whose label says "Copied" for a moment.
 */

import { h } from './dom.js';

let timer = 0;

function box() {
  return document.getElementById('toast');
}

/** Show `text` (and an action button { label, run } if given) for a few seconds. */
export function toast(text, action) {
  const el = box();
  clearTimeout(timer);
  el.replaceChildren(h('span', { class: 'toast-text', text }));
  if (action) {
    const b = h('button', { type: 'button', class: 'toast-action', text: action.label });
    b.addEventListener('click', () => {
      hideToast();
      action.run();
    });
    el.append(b);
  }
  el.classList.add('show');
  timer = setTimeout(hideToast, action ? 7000 : 2600);
}

export function hideToast() {
  const el = box();
  el.classList.remove('show');
  clearTimeout(timer);
  timer = setTimeout(() => {
    if (!el.classList.contains('show')) el.replaceChildren();
  }, 300);
}

/** Show `text` on the button's label for a moment, then its own label again. */
export function flashButton(btn, text) {
  const label = btn.querySelector('.btn-text');
  if (!label) return;
  if (!btn.dataset.label) btn.dataset.label = label.textContent;
  label.textContent = text;
  btn.classList.add('flashed');
  clearTimeout(Number(btn.dataset.timer || 0));
  btn.dataset.timer = String(
    setTimeout(() => {
      label.textContent = btn.dataset.label;
      btn.classList.remove('flashed');
    }, 1800)
  );
}

export function resetButton(btn) {
  const label = btn.querySelector('.btn-text');
  clearTimeout(Number(btn.dataset.timer || 0));
  if (label && btn.dataset.label) label.textContent = btn.dataset.label;
  btn.classList.remove('flashed');
}
