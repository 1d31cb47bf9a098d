/* The source panel: a document from GET /api/documents/<id>, shown beside the chat (or over it
 * on a narrow screen) with the cited passage marked and its highlight inside, and its address,
 * /doc/<doc_id>#chars=<start>-<end>, kept in the location bar so Back, Forward and reload work.
 *
 * The title, the byline and the section headings are the ones the document API gives; the panel
 * does not look for them in the text. What stands before the first section is the article's
 * header (the panel shows it from `title` and `byline`); each section's heading is the text at
 * its start.
 */

import { fetchDocument, loadedDocument } from './api.js';
import { findHighlights } from './conversation.js';
import { h, icon, narrowScreen, reduceMotion, replayClass, scrollBehavior } from './dom.js';
import { documentSpans, normaliseRanges, renderLayers } from './offsets.js';
import { copyText } from './clipboard.js';
import { flashButton, resetButton, toast } from './toast.js';

const els = {};
let hooks = { focusComposer() {} };
let panel = null; // { docId, start, end, highlights, returnFocus, token }
let panelToken = 0;

export function isOpen() {
  return panel !== null;
}

/** Whether the keyboard focus is inside the open panel. */
export function hasFocus() {
  return !els.panel.hidden && els.panel.contains(document.activeElement);
}

export function docPath(docId, start, end) {
  let path = '/doc/' + encodeURIComponent(docId);
  if (Number.isInteger(start) && Number.isInteger(end)) path += '#chars=' + start + '-' + end;
  return path;
}

function applyPanelMode() {
  const open = panel !== null;
  const overlay = open && narrowScreen.matches;
  els.app.classList.toggle('panel-open', open);
  els.backdrop.hidden = !overlay;
  els.chatCol.inert = overlay;
  document.body.classList.toggle('no-scroll', overlay);
  if (overlay) {
    els.panel.setAttribute('role', 'dialog');
    els.panel.setAttribute('aria-modal', 'true');
  } else {
    els.panel.removeAttribute('role');
    els.panel.removeAttribute('aria-modal');
  }
}

/**
 * Open `opts.docId` in the panel, marking [opts.start, opts.end) with opts.highlights inside.
 * opts.returnFocus: where focus goes on close; opts.push === false: don't add a history entry;
 * opts.focus === false: leave the focus where it is.
 */
export async function openSource(opts) {
  const docId = typeof opts.docId === 'string' ? opts.docId : '';
  if (!docId) return;
  const start = Number.isInteger(opts.start) ? opts.start : null;
  const end = Number.isInteger(opts.end) ? opts.end : null;
  const hasRange = start != null && end != null && end > start;
  const token = ++panelToken;
  const prev = panel;
  panel = {
    docId,
    start: hasRange ? start : null,
    end: hasRange ? end : null,
    highlights: opts.highlights || [],
    returnFocus: opts.returnFocus || (prev && prev.returnFocus) || null,
    token,
  };

  const path = docPath(docId, panel.start, panel.end);
  if (opts.push !== false) {
    const here = location.pathname + location.hash;
    if (here === path) history.replaceState({ view: 'doc' }, '', path);
    else history.pushState({ view: 'doc' }, '', path);
  }

  els.permalink.href = path;
  els.permalink.textContent = location.origin + path;
  els.jump.hidden = true;
  resetButton(els.copy);

  const wasHidden = els.panel.hidden;
  els.panel.hidden = false;
  applyPanelMode();
  if (wasHidden && !reduceMotion.matches) replayClass(els.panel, 'entering');

  const ready = await loadedDocument(docId);
  if (!ready) {
    els.title.textContent = 'Loading article…';
    els.byline.hidden = true;
    els.body.replaceChildren(skeleton());
    els.panel.setAttribute('aria-busy', 'true');
  }
  if (opts.focus !== false) els.title.focus({ preventScroll: true });

  const result = ready || (await fetchDocument(docId));
  if (!panel || panel.token !== token) return; // superseded or closed
  els.panel.removeAttribute('aria-busy');

  if (!result.ok) {
    els.title.textContent = result.status === 404 ? 'Article not found' : 'Couldn’t load the article';
    els.byline.hidden = true;
    els.body.replaceChildren(h('div', { class: 'panel-error' }, [icon('alert'), h('p', { text: result.message })]));
    return;
  }
  renderDocument(result.doc, panel);
}

function skeleton() {
  const box = h('div', { class: 'skeleton', 'aria-hidden': 'true' });
  for (let i = 0; i < 9; i++) box.append(h('span', { class: 'sk-line sk-' + (i % 4) }));
  return box;
}

/** The panel's header and body for `doc` (as api.fetchDocument gives it), with `sel` marked. */
function renderDocument(doc, sel) {
  const text = doc.text;
  const len = text.length;
  const title = doc.title.trim() || 'Untitled article';
  const byline = doc.byline == null ? '' : doc.byline.trim();

  els.title.textContent = title;
  els.byline.hidden = !byline;
  els.byline.textContent = byline ? (/^by\s/i.test(byline) ? byline : 'By ' + byline) : '';

  const { passage, highlights, index } = documentSpans(text, sel.start, sel.end, sel.highlights);
  const sections = doc.sections;

  // The header (title, byline) is what precedes the first section: shown above, not again here.
  let bodyStart = sections.length ? index(Math.min(...sections.map((s) => s.start))) : 0;
  if (passage && passage[0] < bodyStart) bodyStart = 0;

  // Each section's heading is the text at its start (a lead section without one has '').
  const headingRanges = [];
  for (const s of sections) {
    if (!s.heading) continue;
    const hs = index(s.start);
    const he = index(s.start + Array.from(s.heading).length);
    if (text.slice(hs, he) === s.heading) headingRanges.push([hs, he]);
  }
  const headings = normaliseRanges(headingRanges, bodyStart, len);
  const headingStarts = new Set(headings.map((r) => r[0]));
  const headingEnds = new Set(headings.map((r) => r[1]));

  // Plain text, with each line break followed by a spacer (wider around headings).
  const leaf = (parent, a, b) => {
    let pos = a;
    for (let i = a; i < b; i++) {
      if (text.charCodeAt(i) !== 10) continue;
      parent.append(text.slice(pos, i + 1));
      pos = i + 1;
      const cls = headingStarts.has(i + 1)
        ? 'gap gap-before-heading'
        : headingEnds.has(i)
          ? 'gap gap-after-heading'
          : 'gap';
      parent.append(h('span', { class: cls, 'aria-hidden': 'true' }));
    }
    if (b > pos) parent.append(text.slice(pos, b));
  };

  const container = h('div', { class: 'doc-text' });
  renderLayers(
    container,
    bodyStart,
    len,
    [
      {
        ranges: passage ? [passage] : [],
        make: () => h('mark', { class: 'passage-mark', id: 'passage-mark' }),
      },
      {
        ranges: headings,
        make: () => h('span', { class: 'doc-heading', role: 'heading', 'aria-level': '3' }),
      },
      { ranges: highlights, make: () => h('mark', { class: 'hl' }) },
    ],
    leaf
  );

  const article = h('article', { class: 'doc', 'aria-label': title }, container);
  if (passage) {
    const sectionName = sectionAt(sections, sel.start);
    els.body.replaceChildren(
      h('p', { class: 'passage-note' }, [
        h('span', { class: 'passage-swatch', 'aria-hidden': 'true' }),
        'Cited passage' + (sectionName ? ' in “' + sectionName + '”' : '') +
          ', characters ' + sel.start + '–' + sel.end,
      ]),
      article
    );
    els.jump.hidden = false;
    requestAnimationFrame(() => scrollToPassage(false));
  } else {
    els.body.replaceChildren(article);
    els.body.scrollTop = 0;
  }
}

/** The heading of the section holding code point `cp`, or null. */
function sectionAt(sections, cp) {
  let name = null;
  for (const s of sections) {
    if (s.start <= cp && s.heading.trim()) name = s.heading.trim();
  }
  return name;
}

function scrollToPassage(smooth) {
  const mark = els.body.querySelector('.passage-mark');
  if (!mark) return;
  const hl = mark.querySelector('mark.hl');
  const body = els.body;
  const bodyRect = body.getBoundingClientRect();
  const markRect = mark.getBoundingClientRect();
  let target;
  if (markRect.height < body.clientHeight * 0.8 || !hl) {
    // Centre the whole passage (or show its start when it is taller than the view).
    const offset = markRect.top - bodyRect.top + body.scrollTop;
    target =
      markRect.height < body.clientHeight * 0.8
        ? offset - (body.clientHeight - markRect.height) / 2
        : offset - 24;
  } else {
    const hlRect = hl.getBoundingClientRect();
    target = hlRect.top - bodyRect.top + body.scrollTop - body.clientHeight / 3;
  }
  body.scrollTo({ top: Math.max(0, target), behavior: smooth ? scrollBehavior() : 'auto' });
}

/** Close the panel; opts.push === false: no history entry, opts.restoreFocus === false: keep focus. */
export function closeSource(opts) {
  const options = opts || {};
  if (!panel) return;
  const returnFocus = panel.returnFocus;
  panel = null;
  panelToken++;
  els.panel.hidden = true;
  els.panel.classList.remove('entering');
  applyPanelMode();
  if (options.push !== false && location.pathname !== '/') {
    history.pushState({ view: 'chat' }, '', '/');
  }
  if (options.restoreFocus !== false) {
    if (returnFocus && document.contains(returnFocus)) returnFocus.focus({ preventScroll: false });
    else hooks.focusComposer();
  }
}

/* ------------------------------------------------------------------ *
 * The address: /doc/<doc_id>#chars=<start>-<end>
 * ------------------------------------------------------------------ */

function parseLocation() {
  const m = /^\/doc\/([^/]+)\/?$/.exec(location.pathname);
  if (!m) return null;
  let docId;
  try {
    docId = decodeURIComponent(m[1]);
  } catch (_) {
    return null;
  }
  const hm = /(?:^#|&)chars=(\d+)-(\d+)(?:&|$)/.exec(location.hash);
  const start = hm ? parseInt(hm[1], 10) : null;
  const end = hm ? parseInt(hm[2], 10) : null;
  return { docId, start, end };
}

function findCard(docId, start, end) {
  for (const card of document.querySelectorAll('#log .citation')) {
    const d = card.dataset;
    if (d.docId === docId && d.start === String(start) && d.end === String(end)) return card;
  }
  return null;
}

/** Open or close the panel to match the address (on load, Back and Forward). */
export function routeFromLocation(initial) {
  const target = parseLocation();
  if (!target) {
    if (panel) closeSource({ push: false });
    return;
  }
  const p = panel;
  if (p && p.docId === target.docId && p.start === target.start && p.end === target.end) return;
  const cited = target.start != null;
  openSource({
    docId: target.docId,
    start: target.start,
    end: target.end,
    highlights: cited ? findHighlights(target.docId, target.start, target.end) : [],
    returnFocus: cited ? findCard(target.docId, target.start, target.end) : null,
    push: false,
    focus: !initial,
  });
}

/** Find the panel's elements and wire its controls; hooks.focusComposer() is where focus goes last. */
export function initSource(options) {
  hooks = { ...hooks, ...options };
  const byId = (id) => document.getElementById(id);
  Object.assign(els, {
    app: byId('app'),
    chatCol: byId('chat-col'),
    panel: byId('source-panel'),
    title: byId('panel-title'),
    byline: byId('panel-byline'),
    body: byId('panel-body'),
    close: byId('panel-close'),
    copy: byId('panel-copy'),
    jump: byId('panel-jump'),
    permalink: byId('panel-permalink'),
    backdrop: byId('backdrop'),
  });

  els.close.addEventListener('click', () => closeSource());
  els.backdrop.addEventListener('click', () => closeSource());
  els.jump.addEventListener('click', () => {
    scrollToPassage(true);
    const mark = els.body.querySelector('.passage-mark');
    if (mark) replayClass(mark, 'flash');
  });
  els.copy.addEventListener('click', async () => {
    const ok = await copyText(els.permalink.href);
    flashButton(els.copy, ok ? 'Copied' : 'Copy failed');
    toast(ok ? 'Link copied' : 'Couldn’t copy. Select the link and copy it by hand.');
  });
  els.permalink.addEventListener('click', (e) => {
    // Same page: keep the view, just make sure the passage is in sight.
    if (e.button === 0 && !e.metaKey && !e.ctrlKey && !e.shiftKey && !e.altKey) {
      e.preventDefault();
      scrollToPassage(true);
    }
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && panel && !e.defaultPrevented) {
      e.preventDefault();
      closeSource();
    }
  });
  window.addEventListener('popstate', () => routeFromLocation(false));
  window.addEventListener('hashchange', () => routeFromLocation(false));
  narrowScreen.addEventListener('change', applyPanelMode);
}
