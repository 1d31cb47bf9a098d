/* News Q&A — chat page.
 *
 * Plain DOM, no framework, no build step. Works under
 * Content-Security-Policy: default-src 'self' (no inline script, no inline style).
 *
 * Safety rule for this file: every piece of text that comes from the server
 * (questions, answers, article text, titles, messages) is inserted with
 * textContent / Text nodes. Nothing is ever parsed as HTML. The only URLs we
 * create are "#cite-…" fragments and "/doc/…" paths built with
 * encodeURIComponent.
 */
'use strict';

(function () {
  const MAX_LEN = 1000;
  const COUNTER_FROM = 800;
  const TOP_K = 5;
  const STORE_KEY = 'newsqa.conversation.v1';
  const REQUEST_TIMEOUT_MS = 90000;
  const CARD_CONTEXT = 200; // UTF-16 units of context shown around a highlight in a card
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const reduceMotion = window.matchMedia('(prefers-reduced-motion: reduce)');
  const narrowScreen = window.matchMedia('(max-width: 799.98px)');
  // On touch devices, focusing the textarea pops up the keyboard over the answer: don't do it unasked.
  const finePointer = window.matchMedia('(hover: hover) and (pointer: fine)');

  const dom = {};
  const state = {
    messages: [],
    seq: 0,
    pending: null, // { controller, bubble }
    docs: new Map(), // doc_id -> Promise<document>
    panel: null, // { docId, start, end, highlights, returnFocus, token }
    panelToken: 0,
    examples: null,
    undo: null,
    toastTimer: 0,
  };

  /* ------------------------------------------------------------------ *
   * Small DOM helpers (text only, never HTML)
   * ------------------------------------------------------------------ */

  const FORBIDDEN_ATTR = /^(on|style$|srcdoc$|formaction$)/i;

  function h(tag, props, children) {
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

  function add(parent, children) {
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

  function icon(name, extraClass) {
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

  function scrollBehavior() {
    return reduceMotion.matches ? 'auto' : 'smooth';
  }

  /* ------------------------------------------------------------------ *
   * Offsets: the API speaks Python string indices (Unicode code points);
   * the DOM speaks UTF-16 code units. Convert before slicing.
   * ------------------------------------------------------------------ */

  /** Returns a function mapping a code-point index in `str` to a UTF-16 index (clamped). */
  function codePointIndexer(str) {
    if (!/[\uD800-\uDFFF]/.test(str)) {
      const n = str.length;
      return (cp) => Math.max(0, Math.min(n, cp));
    }
    const map = [0];
    let units = 0;
    for (const ch of Array.from(str)) {
      units += ch.length;
      map.push(units);
    }
    const last = map.length - 1;
    return (cp) => map[Math.max(0, Math.min(last, cp))];
  }

  /** Code-point offset -> UTF-16 index, for one-off conversions. */
  function cpToUtf16(str, cp) {
    return codePointIndexer(str)(cp);
  }

  /** Sort, clip to [lo, hi), drop empty, merge overlapping ranges. */
  function normaliseRanges(ranges, lo, hi) {
    const out = [];
    const sorted = ranges
      .map(([a, b]) => [Math.max(lo, a), Math.min(hi, b)])
      .filter(([a, b]) => b > a)
      .sort((x, y) => x[0] - y[0]);
    for (const r of sorted) {
      const prev = out[out.length - 1];
      if (prev && r[0] <= prev[1]) prev[1] = Math.max(prev[1], r[1]);
      else out.push([r[0], r[1]]);
    }
    return out;
  }

  /**
   * Render text[a, b) into `parent`, nesting elements for the given layers
   * (outermost first). Each layer: { ranges: [[s, e], …] sorted & disjoint, make: () => Element }.
   * `leaf(parent, s, e)` renders plain text for the innermost level.
   */
  function renderLayers(parent, a, b, layers, depth, leaf) {
    if (a >= b) return;
    if (depth >= layers.length) {
      leaf(parent, a, b);
      return;
    }
    const layer = layers[depth];
    let pos = a;
    for (const [s, e] of layer.ranges) {
      if (e <= pos) continue;
      if (s >= b) break;
      const from = Math.max(s, pos);
      const to = Math.min(e, b);
      if (from > pos) renderLayers(parent, pos, from, layers, depth + 1, leaf);
      const wrapper = layer.make(from, to);
      parent.append(wrapper);
      renderLayers(wrapper, from, to, layers, depth + 1, leaf);
      pos = to;
    }
    if (pos < b) renderLayers(parent, pos, b, layers, depth + 1, leaf);
  }

  /* ------------------------------------------------------------------ *
   * Data hygiene
   * ------------------------------------------------------------------ */

  function str(v) {
    return v == null ? '' : String(v);
  }
  function int(v) {
    const n = Number(v);
    return Number.isFinite(n) ? Math.trunc(n) : null;
  }
  function isPair(p) {
    return Array.isArray(p) && p.length >= 2 && int(p[0]) != null && int(p[1]) != null;
  }

  function cleanCitation(c, i) {
    const src = c && typeof c === 'object' ? c : {};
    const start = int(src.start) ?? 0;
    const end = Math.max(start, int(src.end) ?? start);
    return {
      n: int(src.n) ?? i + 1,
      doc_id: str(src.doc_id),
      title: str(src.title).trim() || 'Untitled article',
      byline: src.byline == null || str(src.byline).trim() === '' ? null : str(src.byline).trim(),
      section: src.section == null || str(src.section).trim() === '' ? null : str(src.section).trim(),
      start,
      end,
      text: str(src.text),
      highlights: Array.isArray(src.highlights)
        ? src.highlights.filter(isPair).map((p) => [int(p[0]), int(p[1])])
        : [],
      score: typeof src.score === 'number' && Number.isFinite(src.score) ? src.score : null,
      also_at: Array.isArray(src.also_at)
        ? src.also_at
            .filter((x) => x && typeof x === 'object' && x.doc_id != null)
            .map((x) => ({ doc_id: str(x.doc_id), start: int(x.start) ?? 0, end: int(x.end) ?? 0 }))
        : [],
    };
  }

  function cleanAnswer(body, question) {
    const citations = Array.isArray(body.citations) ? body.citations.map(cleanCitation) : [];
    const timing = body.timing_ms && typeof body.timing_ms === 'object' ? body.timing_ms : {};
    return {
      question: str(body.question) || question,
      answerable: body.answerable !== false,
      answer: str(body.answer),
      citations,
      total_ms: typeof timing.total === 'number' && Number.isFinite(timing.total) ? timing.total : null,
      build: body.build == null ? null : str(body.build),
    };
  }

  /* ------------------------------------------------------------------ *
   * Persistence (sessionStorage)
   * ------------------------------------------------------------------ */

  function save() {
    try {
      sessionStorage.setItem(STORE_KEY, JSON.stringify({ v: 1, seq: state.seq, messages: state.messages }));
    } catch (_) {
      /* storage full or disabled: the conversation just won't survive a reload */
    }
  }

  function load() {
    try {
      const raw = sessionStorage.getItem(STORE_KEY);
      if (!raw) return;
      const data = JSON.parse(raw);
      if (!data || !Array.isArray(data.messages)) return;
      const messages = [];
      for (const m of data.messages) {
        if (!m || typeof m !== 'object' || typeof m.id !== 'string') continue;
        if (m.role === 'question') messages.push({ id: m.id, role: 'question', text: str(m.text) });
        else if (m.role === 'answer' && m.data && typeof m.data === 'object') {
          messages.push({
            id: m.id,
            role: 'answer',
            question: str(m.question),
            data: {
              question: str(m.data.question),
              answerable: m.data.answerable !== false,
              answer: str(m.data.answer),
              citations: Array.isArray(m.data.citations) ? m.data.citations.map(cleanCitation) : [],
              total_ms: typeof m.data.total_ms === 'number' ? m.data.total_ms : null,
              build: m.data.build == null ? null : str(m.data.build),
            },
            feedback: m.feedback && typeof m.feedback === 'object' ? m.feedback : {},
          });
        } else if (m.role === 'error') {
          messages.push({ id: m.id, role: 'error', question: str(m.question), message: str(m.message), code: str(m.code) });
        }
      }
      state.messages = messages;
      state.seq = Math.max(int(data.seq) ?? 0, messages.length);
      // A question with no reply means the page was reloaded mid-request.
      const last = messages[messages.length - 1];
      if (last && last.role === 'question') {
        messages.push({
          id: nextId(),
          role: 'error',
          question: last.text,
          code: 'interrupted',
          message: 'The page was reloaded before the answer arrived.',
        });
        save();
      }
    } catch (_) {
      state.messages = [];
    }
  }

  function nextId() {
    state.seq += 1;
    return 'm' + state.seq;
  }

  /* ------------------------------------------------------------------ *
   * Conversation rendering
   * ------------------------------------------------------------------ */

  function citeId(msg, n) {
    return 'cite-' + msg.id + '-' + n;
  }

  function docPath(docId, start, end) {
    let path = '/doc/' + encodeURIComponent(docId);
    if (Number.isInteger(start) && Number.isInteger(end)) path += '#chars=' + start + '-' + end;
    return path;
  }

  function renderAll() {
    dom.log.replaceChildren();
    state.messages.forEach((msg, i) => {
      dom.log.append(renderMessage(msg, i === state.messages.length - 1));
    });
    updateWelcome();
  }

  function renderMessage(msg, isLast) {
    if (msg.role === 'question') return renderQuestion(msg);
    if (msg.role === 'answer') return renderAnswer(msg);
    return renderError(msg, isLast);
  }

  function renderQuestion(msg) {
    return h('div', { class: 'msg msg-question', id: msg.id }, [
      h('p', { class: 'bubble' }, [h('span', { class: 'sr-only', text: 'You asked: ' }), msg.text]),
    ]);
  }

  function renderAnswer(msg) {
    const data = msg.data;
    const found = data.answerable;
    const bubble = h('article', {
      class: 'msg msg-answer' + (found ? '' : ' not-found'),
      id: msg.id,
      'aria-labelledby': msg.id + '-label',
      dataset: data.build ? { build: data.build } : null,
    });

    const head = h('div', { class: 'answer-head' }, [
      h('span', { class: 'answer-avatar' }, icon(found ? 'answer' : 'notfound')),
      h('span', {
        class: 'answer-label',
        id: msg.id + '-label',
        text: found ? 'Answer' : 'Not found in the articles',
      }),
    ]);
    bubble.append(head);

    let answerText = data.answer.trim();
    if (!answerText) {
      answerText = found ? '(The server returned an empty answer.)' : 'The articles do not contain an answer to this question.';
    }
    bubble.append(renderAnswerText(msg, answerText));

    // Actions: copy + meta
    const copyBtn = h('button', { type: 'button', class: 'btn btn-small copy-answer' }, [
      icon('copy'),
      h('span', { class: 'btn-text', text: 'Copy answer' }),
    ]);
    copyBtn.addEventListener('click', () => copyAnswer(msg, copyBtn));
    const metaBits = [];
    const n = data.citations.length;
    if (n) metaBits.push(n + (found ? (n === 1 ? ' source' : ' sources') : n === 1 ? ' closest passage' : ' closest passages'));
    if (data.total_ms != null) metaBits.push(formatMs(data.total_ms));
    bubble.append(
      h('div', { class: 'answer-actions' }, [
        copyBtn,
        metaBits.length ? h('span', { class: 'answer-meta', text: metaBits.join(' · ') }) : null,
      ])
    );

    if (n) {
      const headingId = msg.id + '-sources';
      const section = h('section', { class: 'sources', 'aria-labelledby': headingId }, [
        h('h3', {
          class: 'sources-title',
          id: headingId,
          text: found ? 'Sources' : 'Closest passages (not sufficient to answer)',
        }),
      ]);
      const list = h('ol', { class: 'citation-list' });
      data.citations.forEach((c) => list.append(h('li', null, renderCitation(msg, c))));
      section.append(list);
      bubble.append(section);
    }
    return bubble;
  }

  function formatMs(ms) {
    if (ms < 1000) return Math.max(1, Math.round(ms)) + ' ms';
    return (ms / 1000).toFixed(1) + ' s';
  }

  const MARKER = /\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]/g;

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
        'aria-label': 'Source ' + c.n + ': ' + c.title,
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
    card.scrollIntoView({ behavior: scrollBehavior(), block: 'center' });
    card.focus({ preventScroll: true });
    card.classList.remove('flash');
    void card.offsetWidth; // restart the animation
    card.classList.add('flash');
  }

  function renderCitation(msg, c) {
    const id = citeId(msg, c.n);
    const card = h('article', {
      class: 'citation',
      id,
      tabindex: '0',
      'aria-labelledby': id + '-title',
      'aria-describedby': id + '-hint',
      dataset: { docId: c.doc_id, start: String(c.start), end: String(c.end), n: String(c.n) },
    });

    const metaParts = [];
    if (c.byline) metaParts.push(h('span', { class: 'cite-byline', text: c.byline }));
    if (c.section) {
      if (metaParts.length) metaParts.push(h('span', { class: 'sep', 'aria-hidden': 'true', text: '·' }));
      metaParts.push(h('span', { class: 'cite-section', text: c.section }));
    }

    const top = h('div', { class: 'cite-top' }, [
      h('span', { class: 'cite-num' }, [h('span', { class: 'sr-only', text: 'Source ' }), String(c.n)]),
      h('div', { class: 'cite-heading' }, [
        h('h4', { class: 'cite-title', id: id + '-title', text: c.title }),
        metaParts.length ? h('p', { class: 'cite-meta' }, metaParts) : null,
      ]),
      c.score != null ? renderScore(c.score) : null,
    ]);
    card.append(top);
    card.append(renderPassage(c));

    if (c.also_at.length) card.append(renderAlsoAt(msg, c));

    const foot = h('div', { class: 'cite-foot' }, [
      h('span', { class: 'open-hint', id: id + '-hint' }, [
        icon('arrow'),
        h('span', { text: 'Open full article' }),
      ]),
      renderFeedback(msg, c),
    ]);
    card.append(foot);

    const open = () =>
      openSource({
        docId: c.doc_id,
        start: c.start,
        end: c.end,
        highlights: c.highlights,
        returnFocus: card,
      });
    card.addEventListener('click', (e) => {
      if (e.target.closest('button, a, input, textarea')) return;
      const sel = window.getSelection();
      if (sel && !sel.isCollapsed && card.contains(sel.anchorNode)) return; // user is selecting text
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
    const meter = h('span', { class: 'score-bar', 'aria-hidden': 'true' }, [
      h('span', { class: 'score-fill score-' + Math.round(clamped * 10) }),
    ]);
    return h('span', { class: 'cite-score', title: 'Retrieval relevance score' }, [
      meter,
      h('span', { class: 'score-text', text: 'relevance ' + score.toFixed(2) }),
    ]);
  }

  /** The passage with its highlighted sentence(s); far context is kept in the DOM but visually trimmed. */
  function renderPassage(c) {
    const text = c.text;
    const idx = codePointIndexer(text);
    const len = text.length;
    const hls = normaliseRanges(
      c.highlights.map(([a, b]) => [idx(a - c.start), idx(b - c.start)]),
      0,
      len
    );

    let vs = 0;
    let ve = len;
    if (hls.length) {
      vs = hls[0][0] - CARD_CONTEXT;
      ve = hls[hls.length - 1][1] + CARD_CONTEXT;
    } else {
      ve = CARD_CONTEXT * 2;
    }
    if (vs <= 40) vs = 0;
    else {
      const sp = text.slice(vs).search(/\s/);
      vs = sp < 0 || vs + sp >= (hls.length ? hls[0][0] : len) ? (hls.length ? hls[0][0] : 0) : vs + sp + 1;
    }
    if (ve >= len - 40) ve = len;
    else {
      const sp = text.lastIndexOf(' ', ve);
      const floor = hls.length ? hls[hls.length - 1][1] : vs;
      ve = sp > floor ? sp : Math.max(floor, Math.min(len, ve));
    }

    const clip = [];
    if (vs > 0) clip.push([0, vs]);
    if (ve < len) clip.push([ve, len]);
    const box = h('blockquote', {
      class: 'cite-passage' + (vs > 0 ? ' clipped-start' : '') + (ve < len ? ' clipped-end' : ''),
    });
    renderLayers(
      box,
      0,
      len,
      [
        { ranges: clip, make: () => h('span', { class: 'clip' }) },
        { ranges: hls, make: () => h('mark', { class: 'hl' }) },
      ],
      0,
      (parent, a, b) => parent.append(text.slice(a, b))
    );
    return box;
  }

  function knownTitle(docId) {
    for (const m of state.messages) {
      if (m.role !== 'answer') continue;
      for (const c of m.data.citations) if (c.doc_id === docId) return c.title;
    }
    return null;
  }

  function renderAlsoAt(msg, c) {
    const wrap = h('div', { class: 'cite-also' }, [
      h('span', { class: 'cite-also-label', text: 'Also appears at:' }),
    ]);
    const list = h('ul', { class: 'cite-also-list' });
    for (const loc of c.also_at) {
      const title = knownTitle(loc.doc_id);
      const label = (title || loc.doc_id) + ', chars ' + loc.start + '–' + loc.end;
      const btn = h('button', { type: 'button', class: 'link-btn', text: label });
      btn.setAttribute('aria-label', 'Open the same passage in ' + (title || 'document ' + loc.doc_id) + ', characters ' + loc.start + ' to ' + loc.end);
      btn.addEventListener('click', () => {
        const shift = loc.start - c.start;
        openSource({
          docId: loc.doc_id,
          start: loc.start,
          end: loc.end,
          highlights: c.highlights.map(([a, b]) => [a + shift, b + shift]),
          returnFocus: btn,
        });
      });
      list.append(h('li', null, btn));
    }
    wrap.append(list);
    return wrap;
  }

  function renderFeedback(msg, c) {
    const given = msg.feedback && msg.feedback[c.n];
    const status = h('span', { class: 'fb-status', role: 'status' });
    const mk = (kind, label) => {
      const b = h('button', {
        type: 'button',
        class: 'fb-btn fb-' + kind,
        'aria-label': label,
        title: label,
        'aria-pressed': given === kind ? 'true' : 'false',
      }, icon(kind));
      return b;
    };
    const up = mk('up', 'Helpful passage');
    const down = mk('down', 'Not a helpful passage');
    const group = h('div', { class: 'feedback', role: 'group', 'aria-label': 'Was passage ' + c.n + ' helpful?' }, [
      h('span', { class: 'fb-label', 'aria-hidden': 'true', text: 'Helpful?' }),
      up,
      down,
      status,
    ]);
    if (given) {
      up.disabled = down.disabled = true;
      group.classList.add('done');
      status.textContent = 'Feedback recorded';
    }
    const send = async (helpful) => {
      up.disabled = down.disabled = true;
      status.textContent = 'Sending…';
      status.classList.remove('error');
      const result = await api('/api/feedback', {
        question: msg.question || msg.data.question,
        doc_id: c.doc_id,
        start: c.start,
        end: c.end,
        helpful,
      });
      if (result.ok) {
        const kind = helpful ? 'up' : 'down';
        (helpful ? up : down).setAttribute('aria-pressed', 'true');
        group.classList.add('done');
        status.textContent = 'Thanks, feedback recorded';
        msg.feedback = msg.feedback || {};
        msg.feedback[c.n] = kind;
        save();
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

  function renderError(msg, isLast) {
    const body = h('div', { class: 'error-body' }, [
      h('p', { class: 'error-title', text: msg.code === 'interrupted' ? 'No answer' : 'Couldn’t get an answer' }),
      h('p', { class: 'error-message', text: msg.message || 'Something went wrong.' }),
    ]);
    const box = h('div', { class: 'msg msg-error', id: msg.id }, [
      h('span', { class: 'error-icon' }, icon('alert')),
      body,
    ]);
    if (isLast && msg.question) {
      const retry = h('button', { type: 'button', class: 'btn btn-small retry' }, [
        icon('retry'),
        h('span', { class: 'btn-text', text: 'Try again' }),
      ]);
      retry.addEventListener('click', () => {
        retry.remove();
        ask(msg.question);
      });
      body.append(retry);
    }
    return box;
  }

  function removeRetryButtons() {
    dom.log.querySelectorAll('.retry').forEach((b) => b.remove());
  }

  function appendMessage(msg) {
    state.messages.push(msg);
    save();
    removeRetryButtons();
    const node = renderMessage(msg, true);
    dom.log.append(node);
    updateWelcome();
    return node;
  }

  function updateWelcome() {
    const empty = state.messages.length === 0 && !state.pending;
    dom.welcome.hidden = !empty;
    document.body.classList.toggle('is-empty', empty);
    if (empty) loadExamples();
  }

  /* ------------------------------------------------------------------ *
   * Copy helpers
   * ------------------------------------------------------------------ */

  async function copyText(text) {
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

  function answerPlainText(msg) {
    const d = msg.data;
    const lines = [d.answer.trim()];
    if (d.citations.length) {
      lines.push('', 'Sources:');
      for (const c of d.citations) {
        lines.push(
          '[' + c.n + '] ' + c.title + (c.section ? ' — ' + c.section : '') +
            ' (' + c.doc_id + ', chars ' + c.start + '-' + c.end + ')'
        );
      }
    }
    return lines.join('\n');
  }

  async function copyAnswer(msg, btn) {
    const ok = await copyText(answerPlainText(msg));
    flashButton(btn, ok ? 'Copied' : 'Copy failed');
    toast(ok ? 'Answer copied to the clipboard' : 'Couldn’t copy. Select the text and copy it by hand.');
  }

  function flashButton(btn, text) {
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

  function resetButton(btn) {
    const label = btn.querySelector('.btn-text');
    clearTimeout(Number(btn.dataset.timer || 0));
    if (label && btn.dataset.label) label.textContent = btn.dataset.label;
    btn.classList.remove('flashed');
  }

  /* ------------------------------------------------------------------ *
   * Toast
   * ------------------------------------------------------------------ */

  function toast(text, action) {
    clearTimeout(state.toastTimer);
    dom.toast.replaceChildren(h('span', { class: 'toast-text', text }));
    if (action) {
      const b = h('button', { type: 'button', class: 'toast-action', text: action.label });
      b.addEventListener('click', () => {
        hideToast();
        action.run();
      });
      dom.toast.append(b);
    }
    dom.toast.classList.add('show');
    state.toastTimer = setTimeout(hideToast, action ? 7000 : 2600);
  }

  function hideToast() {
    dom.toast.classList.remove('show');
    clearTimeout(state.toastTimer);
    state.toastTimer = setTimeout(() => {
      if (!dom.toast.classList.contains('show')) dom.toast.replaceChildren();
    }, 300);
  }

  /* ------------------------------------------------------------------ *
   * Network
   * ------------------------------------------------------------------ */

  const STATUS_TEXT = {
    400: 'The request was not accepted.',
    404: 'Not found.',
    408: 'The server took too long to respond.',
    413: 'That question is too long.',
    415: 'The server could not read the request.',
    429: 'Too many requests in a short time. Please wait a moment and try again.',
    500: 'Something went wrong on the server.',
    502: 'The server is unreachable right now.',
    503: 'The search index isn’t ready yet. Please try again shortly.',
    504: 'The server took too long to respond.',
  };

  /** fetch JSON; never throws. Returns { ok, status, data } or { ok: false, status, code, message }. */
  async function api(url, body, opts) {
    const options = opts || {};
    const controller = options.controller || new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, options.timeout || REQUEST_TIMEOUT_MS);
    let res;
    try {
      res = await fetch(url, {
        method: body === undefined ? 'GET' : 'POST',
        headers: body === undefined ? { Accept: 'application/json' } : { Accept: 'application/json', 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
        credentials: 'same-origin',
      });
    } catch (err) {
      clearTimeout(timer);
      if (timedOut) return { ok: false, status: 0, code: 'timeout', message: 'The server took too long to answer. Please try again.' };
      if (controller.signal.aborted) return { ok: false, status: 0, code: 'aborted', message: 'Cancelled.' };
      return {
        ok: false,
        status: 0,
        code: 'network',
        message: 'Couldn’t reach the server. Check your connection and try again.',
      };
    }
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    clearTimeout(timer);
    if (timedOut) return { ok: false, status: 0, code: 'timeout', message: 'The server took too long to answer. Please try again.' };
    if (res.ok && data && typeof data === 'object') return { ok: true, status: res.status, data };
    if (res.ok) return { ok: false, status: res.status, code: 'bad_response', message: 'The server sent a response that could not be read.' };
    const err = data && typeof data === 'object' && data.error && typeof data.error === 'object' ? data.error : {};
    let message = str(err.message).trim() || STATUS_TEXT[res.status] || 'The server returned an error (HTTP ' + res.status + ').';
    if (res.status === 429) {
      const retry = parseInt(res.headers.get('Retry-After') || '', 10);
      if (Number.isFinite(retry) && retry > 0 && !/\d+\s*s/.test(message)) message += ' (try again in ' + retry + ' s)';
    }
    return { ok: false, status: res.status, code: str(err.code) || 'http_' + res.status, message };
  }

  /* ------------------------------------------------------------------ *
   * Asking
   * ------------------------------------------------------------------ */

  function setPending(on) {
    dom.question.disabled = on;
    dom.send.disabled = on;
    dom.composer.classList.toggle('busy', on);
    dom.log.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  function pendingBubble() {
    return h('div', { class: 'msg msg-pending' }, [
      h('div', { class: 'pending', role: 'status' }, [
        h('span', { class: 'dots', 'aria-hidden': 'true' }, [h('span'), h('span'), h('span')]),
        h('span', { class: 'pending-text', text: 'Searching the articles…' }),
      ]),
    ]);
  }

  async function ask(rawQuestion) {
    const question = str(rawQuestion).trim().slice(0, MAX_LEN);
    if (state.pending) return;
    if (!question) {
      showHint('Type a question first.');
      dom.question.focus();
      return;
    }
    showHint(null);
    const qNode = appendMessage({ id: nextId(), role: 'question', text: question });
    dom.question.value = '';
    updateComposer();

    const controller = new AbortController();
    const bubble = pendingBubble();
    state.pending = { controller, bubble };
    dom.log.append(bubble);
    setPending(true);
    scrollIntoViewIfNeeded(bubble);

    const result = await api('/api/ask', { question, top_k: TOP_K }, { controller });
    if (state.pending && state.pending.controller === controller) {
      bubble.remove();
      state.pending = null;
      setPending(false);
    } else {
      return; // conversation was cleared while we waited
    }

    let node;
    if (result.ok && (typeof result.data.answer === 'string' || Array.isArray(result.data.citations))) {
      node = appendMessage({
        id: nextId(),
        role: 'answer',
        question,
        data: cleanAnswer(result.data, question),
        feedback: {},
      });
    } else {
      const message = result.ok ? 'The server sent a response that could not be read.' : result.message;
      node = appendMessage({ id: nextId(), role: 'error', question, code: result.code || 'error', message });
    }
    // Show the question and the start of the reply; don't jump past a long answer.
    const scroller = dom.scroller;
    const fits = node.offsetHeight + qNode.offsetHeight + 40 < scroller.clientHeight;
    if (fits) scroller.scrollTo({ top: scroller.scrollHeight, behavior: scrollBehavior() });
    else qNode.scrollIntoView({ behavior: scrollBehavior(), block: 'start' });
    if (dom.sourcePanel.hidden || !dom.sourcePanel.contains(document.activeElement)) {
      if (finePointer.matches) dom.question.focus({ preventScroll: true });
    }
  }

  function scrollIntoViewIfNeeded(node) {
    const scroller = dom.scroller;
    scroller.scrollTo({ top: scroller.scrollHeight, behavior: scrollBehavior() });
    void node;
  }

  let hintTimer = 0;
  function showHint(text) {
    clearTimeout(hintTimer);
    if (!text) {
      dom.hint.textContent = '';
      dom.hint.append(...defaultHint());
      dom.hint.classList.remove('warn');
      return;
    }
    dom.hint.textContent = text;
    dom.hint.classList.add('warn');
    hintTimer = setTimeout(() => showHint(null), 2500);
  }

  function defaultHint() {
    return [h('kbd', { text: 'Enter' }), ' to send · ', h('kbd', { text: 'Shift' }), '+', h('kbd', { text: 'Enter' }), ' for a new line'];
  }

  function updateComposer() {
    const len = dom.question.value.length;
    if (len >= COUNTER_FROM) {
      dom.counter.hidden = false;
      dom.counter.textContent = len + ' / ' + MAX_LEN;
      dom.counter.classList.toggle('at-limit', len >= MAX_LEN);
    } else {
      dom.counter.hidden = true;
      dom.counter.textContent = '';
    }
    dom.composer.classList.toggle('has-text', dom.question.value.trim().length > 0);
    // Fallback autosize for browsers without `field-sizing: content`.
    if (!CSS.supports('field-sizing', 'content')) {
      const lines = dom.question.value.split('\n').length;
      dom.question.rows = Math.min(8, Math.max(1, lines));
    }
  }

  function clearConversation() {
    if (state.pending) {
      state.pending.controller.abort();
      state.pending.bubble.remove();
      state.pending = null;
      setPending(false);
    }
    const had = state.messages;
    state.messages = [];
    save();
    if (state.panel) closeSource({ restoreFocus: false });
    renderAll();
    dom.question.focus();
    if (had.length) {
      toast('Conversation cleared', {
        label: 'Undo',
        run: () => {
          if (state.messages.length || state.pending) return;
          state.messages = had;
          save();
          renderAll();
          dom.scroller.scrollTop = dom.scroller.scrollHeight;
        },
      });
    }
  }

  /* ------------------------------------------------------------------ *
   * Examples
   * ------------------------------------------------------------------ */

  let examplesRequested = false;
  async function loadExamples() {
    if (examplesRequested) return;
    examplesRequested = true;
    const result = await api('/api/examples', undefined, { timeout: 15000 });
    const questions = result.ok && Array.isArray(result.data.questions) ? result.data.questions : [];
    const picked = [];
    for (const q of questions) {
      const s = str(q).trim();
      if (s && s.length <= MAX_LEN && !picked.includes(s)) picked.push(s);
      if (picked.length === 4) break;
    }
    dom.examples.replaceChildren();
    for (const q of picked) {
      const b = h('button', { type: 'button', class: 'example', text: q });
      b.addEventListener('click', () => ask(q));
      dom.examples.append(h('li', null, b));
    }
    dom.examplesLabel.hidden = picked.length === 0;
  }

  /* ------------------------------------------------------------------ *
   * Source panel
   * ------------------------------------------------------------------ */

  function fetchDocument(docId) {
    if (!state.docs.has(docId)) {
      const p = api('/api/documents/' + encodeURIComponent(docId), undefined, { timeout: 30000 }).then((r) => {
        if (!r.ok) state.docs.delete(docId); // don't cache failures
        return r;
      });
      state.docs.set(docId, p);
    }
    return state.docs.get(docId);
  }

  function findHighlights(docId, start, end) {
    for (let i = state.messages.length - 1; i >= 0; i--) {
      const m = state.messages[i];
      if (m.role !== 'answer') continue;
      for (const c of m.data.citations) {
        if (c.doc_id === docId && c.start === start && c.end === end) return c.highlights;
        for (const loc of c.also_at) {
          if (loc.doc_id === docId && loc.start === start && loc.end === end) {
            const shift = loc.start - c.start;
            return c.highlights.map(([a, b]) => [a + shift, b + shift]);
          }
        }
      }
    }
    return [];
  }

  function findCard(docId, start, end) {
    for (const card of dom.log.querySelectorAll('.citation')) {
      if (card.dataset.docId === docId && card.dataset.start === String(start) && card.dataset.end === String(end)) return card;
    }
    return null;
  }

  function applyPanelMode() {
    const open = !!state.panel;
    const overlay = open && narrowScreen.matches;
    dom.app.classList.toggle('panel-open', open);
    dom.backdrop.hidden = !overlay;
    dom.chatCol.inert = overlay;
    document.body.classList.toggle('no-scroll', overlay);
    if (overlay) {
      dom.sourcePanel.setAttribute('role', 'dialog');
      dom.sourcePanel.setAttribute('aria-modal', 'true');
    } else {
      dom.sourcePanel.removeAttribute('role');
      dom.sourcePanel.removeAttribute('aria-modal');
    }
  }

  async function openSource(opts) {
    const docId = str(opts.docId);
    if (!docId) return;
    const start = Number.isInteger(opts.start) ? opts.start : null;
    const end = Number.isInteger(opts.end) ? opts.end : null;
    const hasRange = start != null && end != null && end > start;
    const token = ++state.panelToken;
    const prev = state.panel;
    state.panel = {
      docId,
      start: hasRange ? start : null,
      end: hasRange ? end : null,
      highlights: opts.highlights || [],
      returnFocus: opts.returnFocus || (prev && prev.returnFocus) || null,
      token,
    };

    const path = docPath(docId, hasRange ? start : null, hasRange ? end : null);
    if (opts.push !== false) {
      const here = location.pathname + location.hash;
      if (here === path) history.replaceState({ view: 'doc' }, '', path);
      else history.pushState({ view: 'doc' }, '', path);
    }

    dom.permalink.href = path;
    dom.permalink.textContent = location.origin + path;
    dom.panelJump.hidden = true;
    resetButton(dom.panelCopy);

    const wasHidden = dom.sourcePanel.hidden;
    dom.sourcePanel.hidden = false;
    applyPanelMode();
    if (wasHidden && !reduceMotion.matches) {
      dom.sourcePanel.classList.remove('entering');
      void dom.sourcePanel.offsetWidth;
      dom.sourcePanel.classList.add('entering');
    }

    const cached = state.docs.get(docId);
    let ready = null;
    if (cached) ready = await Promise.race([cached, Promise.resolve(null)]);
    if (!ready) {
      dom.panelTitle.textContent = 'Loading article…';
      dom.panelByline.hidden = true;
      dom.panelBody.replaceChildren(skeleton());
      dom.sourcePanel.setAttribute('aria-busy', 'true');
    }
    if (opts.focus !== false) dom.panelTitle.focus({ preventScroll: true });

    const result = ready || (await fetchDocument(docId));
    if (!state.panel || state.panel.token !== token) return; // superseded or closed
    dom.sourcePanel.removeAttribute('aria-busy');

    if (!result.ok) {
      dom.panelTitle.textContent = result.status === 404 ? 'Article not found' : 'Couldn’t load the article';
      dom.panelByline.hidden = true;
      dom.panelBody.replaceChildren(
        h('div', { class: 'panel-error' }, [icon('alert'), h('p', { text: result.message })])
      );
      return;
    }
    renderDocument(result.data, state.panel);
  }

  function skeleton() {
    const box = h('div', { class: 'skeleton', 'aria-hidden': 'true' });
    for (let i = 0; i < 9; i++) box.append(h('span', { class: 'sk-line sk-' + (i % 4) }));
    return box;
  }

  function renderDocument(doc, sel) {
    const text = str(doc.text);
    const title = str(doc.title).trim() || 'Untitled article';
    const byline = doc.byline == null ? '' : str(doc.byline).trim();
    const idx = codePointIndexer(text);
    const len = text.length;

    dom.panelTitle.textContent = title;
    if (byline) {
      dom.panelByline.textContent = /^by\s/i.test(byline) ? byline : 'By ' + byline;
      dom.panelByline.hidden = false;
    } else {
      dom.panelByline.hidden = true;
    }

    // The cited passage and its highlight, in UTF-16 units.
    let passage = null;
    if (sel.start != null && sel.end != null) {
      const ps = idx(sel.start);
      const pe = idx(sel.end);
      if (pe > ps) passage = [ps, pe];
    }
    const hls = passage
      ? normaliseRanges(
          (sel.highlights || []).filter(isPair).map(([a, b]) => [idx(a), idx(b)]),
          passage[0],
          passage[1]
        )
      : [];

    // Skip the title and byline lines at the top: they are shown in the panel header.
    let bodyStart = 0;
    const nl1 = text.indexOf('\n');
    if (nl1 > 0 && text.slice(0, nl1).trim() === title) {
      bodyStart = nl1 + 1;
      let nl2 = text.indexOf('\n', bodyStart);
      if (nl2 < 0) nl2 = len;
      const line2 = text.slice(bodyStart, nl2).trim();
      if (byline && (line2 === byline || line2.toLowerCase() === ('by ' + byline).toLowerCase())) {
        bodyStart = Math.min(len, nl2 + 1);
      }
    }
    if (passage && passage[0] < bodyStart) bodyStart = 0;

    // Section headings: the heading text where the document has it, else a synthetic heading.
    const headingRanges = [];
    const synthetic = new Map();
    const sections = Array.isArray(doc.sections) ? doc.sections : [];
    for (const s of sections) {
      if (!s || typeof s !== 'object') continue;
      const heading = str(s.heading).trim();
      const at = int(s.start);
      if (!heading || at == null) continue;
      const hs = idx(at);
      if (text.startsWith(heading, hs)) {
        headingRanges.push([hs, hs + heading.length]);
        continue;
      }
      const lineEnd = hs > 0 && text[hs - 1] === '\n' ? hs - 1 : -1;
      if (lineEnd >= 0) {
        const lineStart = text.lastIndexOf('\n', lineEnd - 1) + 1;
        if (text.slice(lineStart, lineEnd).trim() === heading) {
          headingRanges.push([lineStart, lineEnd]);
          continue;
        }
      }
      if (heading === title && hs === 0) continue;
      if (!synthetic.has(hs)) synthetic.set(hs, []);
      synthetic.get(hs).push(heading);
    }
    const headings = normaliseRanges(headingRanges, bodyStart, len);
    const headingStarts = new Set(headings.map((r) => r[0]));
    const headingEnds = new Set(headings.map((r) => r[1]));

    const inPassage = (p) => passage && p >= passage[0] && p < passage[1];
    const makeSynthetic = (heading) =>
      h('h3', { class: 'doc-heading doc-heading-synthetic', text: heading });

    const leaf = (parent, a, b) => {
      let pos = a;
      const flush = (to) => {
        if (to > pos) parent.append(text.slice(pos, to));
        pos = to;
      };
      for (let i = a; i < b; i++) {
        if (synthetic.has(i) && !inPassage(i)) {
          flush(i);
          synthetic.get(i).forEach((hd) => parent.append(makeSynthetic(hd)));
          synthetic.delete(i);
        }
        if (text.charCodeAt(i) === 10) {
          flush(i + 1);
          const cls = headingStarts.has(i + 1) ? 'gap gap-before-heading' : headingEnds.has(i) ? 'gap gap-after-heading' : 'gap';
          parent.append(h('span', { class: cls, 'aria-hidden': 'true' }));
        }
      }
      flush(b);
    };

    const container = h('div', { class: 'doc-text' });
    const layers = [
      {
        ranges: passage ? [passage] : [],
        make: () => {
          // A synthetic heading exactly at the passage start goes just before it.
          if (passage && synthetic.has(passage[0])) {
            synthetic.get(passage[0]).forEach((hd) => container.append(makeSynthetic(hd)));
            synthetic.delete(passage[0]);
          }
          return h('mark', { class: 'passage-mark', id: 'passage-mark' });
        },
      },
      {
        ranges: headings,
        make: () => h('span', { class: 'doc-heading', role: 'heading', 'aria-level': '3' }),
      },
      { ranges: hls, make: () => h('mark', { class: 'hl' }) },
    ];
    renderLayers(container, bodyStart, len, layers, 0, leaf);

    const article = h('article', { class: 'doc', 'aria-label': title }, container);
    if (passage) {
      const sectionName = sectionAt(sections, sel.start);
      dom.panelBody.replaceChildren(
        h('p', { class: 'passage-note' }, [
          h('span', { class: 'passage-swatch', 'aria-hidden': 'true' }),
          'Cited passage' + (sectionName ? ' in “' + sectionName + '”' : '') + ', characters ' + sel.start + '–' + sel.end,
        ]),
        article
      );
      dom.panelJump.hidden = false;
      requestAnimationFrame(() => scrollToPassage(false));
    } else {
      dom.panelBody.replaceChildren(article);
      dom.panelBody.scrollTop = 0;
    }
  }

  function sectionAt(sections, cp) {
    let name = null;
    for (const s of sections) {
      if (s && int(s.start) != null && int(s.start) <= cp && str(s.heading).trim()) name = str(s.heading).trim();
    }
    return name;
  }

  function scrollToPassage(smooth) {
    const mark = dom.panelBody.querySelector('.passage-mark');
    if (!mark) return;
    const hl = mark.querySelector('mark.hl');
    const body = dom.panelBody;
    const bodyRect = body.getBoundingClientRect();
    const markRect = mark.getBoundingClientRect();
    let target;
    if (markRect.height < body.clientHeight * 0.8 || !hl) {
      // Centre the whole passage (or show its start when it is taller than the view).
      const offset = markRect.top - bodyRect.top + body.scrollTop;
      target = markRect.height < body.clientHeight * 0.8 ? offset - (body.clientHeight - markRect.height) / 2 : offset - 24;
    } else {
      const hlRect = hl.getBoundingClientRect();
      target = hlRect.top - bodyRect.top + body.scrollTop - body.clientHeight / 3;
    }
    body.scrollTo({ top: Math.max(0, target), behavior: smooth ? scrollBehavior() : 'auto' });
  }

  function closeSource(opts) {
    const options = opts || {};
    if (!state.panel) return;
    const returnFocus = state.panel.returnFocus;
    state.panel = null;
    state.panelToken++;
    dom.sourcePanel.hidden = true;
    dom.sourcePanel.classList.remove('entering');
    applyPanelMode();
    if (options.push !== false && location.pathname !== '/') {
      history.pushState({ view: 'chat' }, '', '/');
    }
    if (options.restoreFocus !== false) {
      if (returnFocus && document.contains(returnFocus)) returnFocus.focus({ preventScroll: false });
      else dom.question.focus();
    }
  }

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

  function routeFromLocation(initial) {
    const target = parseLocation();
    if (!target) {
      if (state.panel) closeSource({ push: false });
      return;
    }
    const p = state.panel;
    if (p && p.docId === target.docId && p.start === target.start && p.end === target.end) return;
    openSource({
      docId: target.docId,
      start: target.start,
      end: target.end,
      highlights: target.start != null ? findHighlights(target.docId, target.start, target.end) : [],
      returnFocus: target.start != null ? findCard(target.docId, target.start, target.end) : null,
      push: false,
      focus: !initial,
    });
  }

  /* ------------------------------------------------------------------ *
   * Wiring
   * ------------------------------------------------------------------ */

  function init() {
    dom.app = document.getElementById('app');
    dom.chatCol = document.getElementById('chat-col');
    dom.scroller = document.getElementById('scroller');
    dom.log = document.getElementById('log');
    dom.welcome = document.getElementById('welcome');
    dom.examples = document.getElementById('examples');
    dom.examplesLabel = document.getElementById('examples-label');
    dom.composer = document.getElementById('composer');
    dom.question = document.getElementById('question');
    dom.send = document.getElementById('send');
    dom.clear = document.getElementById('clear');
    dom.counter = document.getElementById('counter');
    dom.hint = document.getElementById('composer-hint');
    dom.sourcePanel = document.getElementById('source-panel');
    dom.panelTitle = document.getElementById('panel-title');
    dom.panelByline = document.getElementById('panel-byline');
    dom.panelBody = document.getElementById('panel-body');
    dom.panelClose = document.getElementById('panel-close');
    dom.panelCopy = document.getElementById('panel-copy');
    dom.panelJump = document.getElementById('panel-jump');
    dom.permalink = document.getElementById('panel-permalink');
    dom.backdrop = document.getElementById('backdrop');
    dom.toast = document.getElementById('toast');

    dom.question.maxLength = MAX_LEN;

    dom.composer.addEventListener('submit', (e) => {
      e.preventDefault();
      ask(dom.question.value);
    });
    dom.question.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        ask(dom.question.value);
      }
    });
    dom.question.addEventListener('input', updateComposer);
    dom.clear.addEventListener('click', clearConversation);

    dom.panelClose.addEventListener('click', () => closeSource());
    dom.backdrop.addEventListener('click', () => closeSource());
    dom.panelJump.addEventListener('click', () => {
      scrollToPassage(true);
      const mark = dom.panelBody.querySelector('.passage-mark');
      if (mark) {
        mark.classList.remove('flash');
        void mark.offsetWidth;
        mark.classList.add('flash');
      }
    });
    dom.panelCopy.addEventListener('click', async () => {
      const ok = await copyText(dom.permalink.href);
      flashButton(dom.panelCopy, ok ? 'Copied' : 'Copy failed');
      toast(ok ? 'Link copied' : 'Couldn’t copy. Select the link and copy it by hand.');
    });
    dom.permalink.addEventListener('click', (e) => {
      // Same page: keep the view, just make sure the passage is in sight.
      if (e.button === 0 && !e.metaKey && !e.ctrlKey && !e.shiftKey && !e.altKey) {
        e.preventDefault();
        scrollToPassage(true);
      }
    });

    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && state.panel && !e.defaultPrevented) {
        e.preventDefault();
        closeSource();
      }
    });
    window.addEventListener('popstate', () => routeFromLocation(false));
    window.addEventListener('hashchange', () => routeFromLocation(false));
    narrowScreen.addEventListener('change', applyPanelMode);

    load();
    renderAll();
    updateComposer();
    showHint(null);
    dom.scroller.scrollTop = dom.scroller.scrollHeight;
    routeFromLocation(true);
    if (!state.panel && finePointer.matches) dom.question.focus({ preventScroll: true });
  }

  // Exposed for tests and debugging only (pure helper, no side effects).
  window.NewsQA = Object.freeze({ cpToUtf16 });

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
