/* Rendering conversation turns into DOM nodes: questions, answers with their [n] markers,
 * citation cards with highlights, feedback buttons, errors.
 *
 * Nothing here talks to the network or the store: what a click does comes in as `actions`
 *   { ask(question), openSource(opts), feedback(msg, citation, helpful) -> Promise<result>,
 *     copyAnswer(msg, button), knownTitle(docId) }.
 * Server text only ever reaches the page through `h` (textContent / Text nodes).
 */

import { h, icon, scrollBehavior, replayClass } from './dom.js';
import { cardWindow, renderLayers, shiftSpans } from './offsets.js';

const CARD_CONTEXT = 200; // UTF-16 units of context shown around a highlight in a card
const MARKER = /\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]/g;

export function citeId(msg, n) {
  return 'cite-' + msg.id + '-' + n;
}

const titleOf = (c) => c.title.trim() || 'Untitled article';
const orNull = (s) => (s == null || s.trim() === '' ? null : s.trim());

export function renderMessage(msg, isLast, actions) {
  if (msg.role === 'question') return renderQuestion(msg);
  if (msg.role === 'answer') return renderAnswer(msg, actions);
  return renderError(msg, isLast, actions);
}

function renderQuestion(msg) {
  return h('div', { class: 'msg msg-question', id: msg.id }, [
    h('p', { class: 'bubble' }, [h('span', { class: 'sr-only', text: 'You asked: ' }), msg.text]),
  ]);
}

function renderAnswer(msg, actions) {
  const data = msg.data;
  const found = data.answerable;
  const bubble = h('article', {
    class: 'msg msg-answer' + (found ? '' : ' not-found'),
    id: msg.id,
    'aria-labelledby': msg.id + '-label',
    dataset: data.build ? { build: data.build } : null,
  });

  bubble.append(
    h('div', { class: 'answer-head' }, [
      h('span', { class: 'answer-avatar' }, icon(found ? 'answer' : 'notfound')),
      h('span', {
        class: 'answer-label',
        id: msg.id + '-label',
        text: found ? 'Answer' : 'Not found in the articles',
      }),
    ])
  );

  // A follow-up: say what was actually searched.
  const oneLine = (t) => t.split(/\s+/).join(' ').trim();
  if (data.searched && oneLine(data.searched) !== oneLine(msg.question || data.question)) {
    bubble.append(
      h('p', { class: 'searched' }, [
        h('span', { class: 'searched-label', text: 'Searched for: ' }),
        h('span', { class: 'searched-text', text: data.searched }),
      ])
    );
  }
  if (found && data.short_answer) {
    bubble.append(
      h('p', { class: 'short-answer' }, h('strong', { text: data.short_answer.text }))
    );
  }

  let answerText = data.answer.trim();
  if (!answerText) {
    answerText = found
      ? '(The server returned an empty answer.)'
      : 'The articles do not contain an answer to this question.';
  }
  bubble.append(renderAnswerText(msg, answerText));

  const copyBtn = h('button', { type: 'button', class: 'btn btn-small copy-answer' }, [
    icon('copy'),
    h('span', { class: 'btn-text', text: 'Copy answer' }),
  ]);
  copyBtn.addEventListener('click', () => actions.copyAnswer(msg, copyBtn));
  const metaBits = [];
  const n = data.citations.length;
  if (n) {
    const noun = found ? (n === 1 ? ' source' : ' sources') : n === 1 ? ' closest passage' : ' closest passages';
    metaBits.push(n + noun);
  }
  const total = data.timing_ms.total;
  if (typeof total === 'number') metaBits.push(formatMs(total));
  bubble.append(
    h('div', { class: 'answer-actions' }, [
      copyBtn,
      metaBits.length ? h('span', { class: 'answer-meta', text: metaBits.join(' · ') }) : null,
    ])
  );

  if (n) {
    const headingId = msg.id + '-sources';
    // The sources the answer cites first; the rest folded under "more passages".
    const used = found ? data.citations.filter((c) => c.used) : data.citations;
    const shown = used.length ? used : data.citations;
    const rest = data.citations.filter((c) => !shown.includes(c));
    const list = h('ol', { class: 'citation-list' });
    shown.forEach((c) => list.append(h('li', null, renderCitation(msg, c, actions))));
    let more = null;
    if (rest.length) {
      const restList = h('ol', { class: 'citation-list' });
      rest.forEach((c) => restList.append(h('li', null, renderCitation(msg, c, actions))));
      more = h('details', { class: 'more-passages' }, [
        h('summary', { text: 'more passages (' + rest.length + ')' }),
        restList,
      ]);
    }
    bubble.append(
      h('section', { class: 'sources', 'aria-labelledby': headingId }, [
        h('h2', {
          class: 'sources-title',
          id: headingId,
          text: found ? 'Sources' : 'Closest passages (not sufficient to answer)',
        }),
        list,
        more,
      ])
    );
  }
  return bubble;
}

function formatMs(ms) {
  if (ms < 1000) return Math.max(1, Math.round(ms)) + ' ms';
  return (ms / 1000).toFixed(1) + ' s';
}

/** The answer with each [n] (or [n, m]) that names one of its citations made a link to the card. */
function renderAnswerText(msg, text) {
  const p = h('p', { class: 'answer-text' });
  const byN = new Map(msg.data.citations.map((c) => [c.n, c]));
  let last = 0;
  for (const m of text.matchAll(MARKER)) {
    const nums = m[1].split(/[,;]/).map((s) => parseInt(s.trim(), 10));
    if (!nums.every((x) => byN.has(x))) continue; // not ours: leave it as written
    p.append(text.slice(last, m.index));
    nums.forEach((x) => p.append(citeRef(msg, byN.get(x))));
    last = m.index + m[0].length;
  }
  p.append(text.slice(last));
  return p;
}

function citeRef(msg, c) {
  const id = citeId(msg, c.n);
  const a = h(
    'a',
    {
      class: 'cite-ref',
      href: '#' + id,
      'aria-label': 'Source ' + c.n + ': ' + titleOf(c),
      dataset: { target: id },
    },
    [h('span', { class: 'bracket', text: '[' }), String(c.n), h('span', { class: 'bracket', text: ']' })]
  );
  a.addEventListener('click', (e) => {
    e.preventDefault();
    const card = document.getElementById(id);
    if (card) focusCard(card);
  });
  return a;
}

function focusCard(card) {
  const folded = card.closest('details');
  if (folded) folded.open = true;
  card.scrollIntoView({ behavior: scrollBehavior(), block: 'center' });
  card.focus({ preventScroll: true });
  replayClass(card, 'flash');
}

function renderCitation(msg, c, actions) {
  const id = citeId(msg, c.n);
  const card = h('article', {
    class: 'citation',
    id,
    tabindex: '0',
    'aria-labelledby': id + '-title',
    'aria-describedby': id + '-hint',
    dataset: { docId: c.doc_id, start: String(c.start), end: String(c.end), n: String(c.n) },
  });

  const byline = orNull(c.byline);
  const section = orNull(c.section);
  const metaParts = [];
  if (byline) metaParts.push(h('span', { class: 'cite-byline', text: byline }));
  if (section) {
    if (metaParts.length) metaParts.push(h('span', { class: 'sep', 'aria-hidden': 'true', text: '·' }));
    metaParts.push(h('span', { class: 'cite-section', text: section }));
  }

  card.append(
    h('div', { class: 'cite-top' }, [
      h('span', { class: 'cite-num' }, [h('span', { class: 'sr-only', text: 'Source ' }), String(c.n)]),
      h('div', { class: 'cite-heading' }, [
        h('h3', { class: 'cite-title', id: id + '-title', text: titleOf(c) }),
        metaParts.length ? h('p', { class: 'cite-meta' }, metaParts) : null,
      ]),
      renderScore(c.score),
    ])
  );
  card.append(renderPassage(c));
  if (c.also_at.length) card.append(renderAlsoAt(c, actions));
  card.append(
    h('div', { class: 'cite-foot' }, [
      h('span', { class: 'open-hint', id: id + '-hint' }, [icon('arrow'), h('span', { text: 'Open full article' })]),
      renderFeedback(msg, c, actions),
    ])
  );

  const open = () =>
    actions.openSource({
      docId: c.doc_id,
      start: c.start,
      end: c.end,
      highlights: c.highlights,
      returnFocus: card,
    });
  card.addEventListener('click', (e) => {
    if (e.target.closest('button, a, input, textarea')) return;
    const sel = window.getSelection();
    if (sel && !sel.isCollapsed && card.contains(sel.anchorNode)) return; // the user is selecting text
    open();
  });
  card.addEventListener('keydown', (e) => {
    if (e.target !== card) return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      open();
    }
  });
  return card;
}

function renderScore(score) {
  const clamped = Math.max(0, Math.min(1, score));
  return h('span', { class: 'cite-score', title: 'Retrieval relevance score' }, [
    h('span', { class: 'score-bar', 'aria-hidden': 'true' }, [
      h('span', { class: 'score-fill score-' + Math.round(clamped * 10) }),
    ]),
    h('span', { class: 'score-text', text: 'relevance ' + score.toFixed(2) }),
  ]);
}

/** The passage with its highlighted sentence(s); far context stays in the DOM, visually trimmed. */
function renderPassage(c) {
  const text = c.text;
  const len = text.length;
  const win = cardWindow(c, CARD_CONTEXT);
  const clip = [];
  if (win.start > 0) clip.push([0, win.start]);
  if (win.end < len) clip.push([win.end, len]);
  const box = h('blockquote', {
    class: 'cite-passage' + (win.start > 0 ? ' clipped-start' : '') + (win.end < len ? ' clipped-end' : ''),
  });
  renderLayers(
    box,
    0,
    len,
    [
      { ranges: clip, make: () => h('span', { class: 'clip' }) },
      { ranges: win.highlights, make: () => h('mark', { class: 'hl' }) },
    ],
    (parent, a, b) => parent.append(text.slice(a, b))
  );
  return box;
}

function renderAlsoAt(c, actions) {
  const list = h('ul', { class: 'cite-also-list' });
  for (const loc of c.also_at) {
    const title = actions.knownTitle(loc.doc_id);
    const btn = h('button', {
      type: 'button',
      class: 'link-btn',
      text: (title || loc.doc_id) + ', chars ' + loc.start + '–' + loc.end,
      'aria-label':
        'Open the same passage in ' + (title || 'document ' + loc.doc_id) +
        ', characters ' + loc.start + ' to ' + loc.end,
    });
    btn.addEventListener('click', () =>
      actions.openSource({
        docId: loc.doc_id,
        start: loc.start,
        end: loc.end,
        highlights: shiftSpans(c.highlights, loc.start - c.start),
        returnFocus: btn,
      })
    );
    list.append(h('li', null, btn));
  }
  return h('div', { class: 'cite-also' }, [
    h('span', { class: 'cite-also-label', text: 'Also appears at:' }),
    list,
  ]);
}

function renderFeedback(msg, c, actions) {
  const given = msg.feedback[c.n];
  const status = h('span', { class: 'fb-status', role: 'status' });
  const button = (kind, label) =>
    h(
      'button',
      {
        type: 'button',
        class: 'fb-btn fb-' + kind,
        'aria-label': label,
        title: label,
        'aria-pressed': given === kind ? 'true' : 'false',
      },
      icon(kind)
    );
  const up = button('up', 'Helpful passage');
  const down = button('down', 'Not a helpful passage');
  const group = h(
    'div',
    { class: 'feedback', role: 'group', 'aria-label': 'Was passage ' + c.n + ' helpful?' },
    [h('span', { class: 'fb-label', 'aria-hidden': 'true', text: 'Helpful?' }), up, down, status]
  );
  if (given) {
    up.disabled = down.disabled = true;
    group.classList.add('done');
    status.textContent = 'Feedback recorded';
  }
  const send = async (helpful) => {
    up.disabled = down.disabled = true;
    status.textContent = 'Sending…';
    status.classList.remove('error');
    const result = await actions.feedback(msg, c, helpful);
    if (result.ok) {
      (helpful ? up : down).setAttribute('aria-pressed', 'true');
      group.classList.add('done');
      status.textContent = 'Thanks, feedback recorded';
    } else {
      up.disabled = down.disabled = false;
      status.classList.add('error');
      status.textContent = 'Not recorded: ' + result.message;
    }
  };
  up.addEventListener('click', () => send(true));
  down.addEventListener('click', () => send(false));
  return group;
}

function renderError(msg, isLast, actions) {
  const body = h('div', { class: 'error-body' }, [
    h('p', { class: 'error-title', text: msg.code === 'interrupted' ? 'No answer' : 'Couldn’t get an answer' }),
    h('p', { class: 'error-message', text: msg.message || 'Something went wrong.' }),
  ]);
  if (isLast && msg.question) {
    const retry = h('button', { type: 'button', class: 'btn btn-small retry' }, [
      icon('retry'),
      h('span', { class: 'btn-text', text: 'Try again' }),
    ]);
    retry.addEventListener('click', () => {
      retry.remove();
      actions.ask(msg.question);
    });
    body.append(retry);
  }
  return h('div', { class: 'msg msg-error', id: msg.id }, [h('span', { class: 'error-icon' }, icon('alert')), body]);
}

/** The "searching" bubble shown while a question is out. */
export function pendingBubble() {
  return h('div', { class: 'msg msg-pending' }, [
    h('div', { class: 'pending', role: 'status' }, [
      h('span', { class: 'dots', 'aria-hidden': 'true' }, [h('span'), h('span'), h('span')]),
      h('span', { class: 'pending-text', text: 'Searching the articles…' }),
    ]),
  ]);
}

/** An answer as plain text with its sources listed, for the clipboard. */
export function answerPlainText(msg) {
  const d = msg.data;
  const lines = d.answerable && d.short_answer ? [d.short_answer.text, ''] : [];
  lines.push(d.answer.trim());
  if (d.citations.length) {
    lines.push('', 'Sources:');
    for (const c of d.citations) {
      const section = orNull(c.section);
      lines.push(
        '[' + c.n + '] ' + titleOf(c) + (section ? ' — ' + section : '') +
          ' (' + c.doc_id + ', chars ' + c.start + '-' + c.end + ')'
      );
    }
  }
  return lines.join('\n');
}
