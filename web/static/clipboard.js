/* Copying text: the Clipboard API where the page may use it, else a hidden textarea. */

import { h } from './dom.js';

/** Copy `text`; true when it worked. */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (_) {
    /* fall through to the legacy path */
  }
  const ta = h('textarea', { class: 'clipboard-helper', readonly: true, 'aria-hidden': 'true', tabindex: '-1' });
  ta.value = text;
  document.body.append(ta);
  const prevFocus = document.activeElement;
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch (_) {
    ok = false;
  }
  ta.remove();
  if (prevFocus && prevFocus.focus) prevFocus.focus({ preventScroll: true });
  return ok;
}
