/* The chat column: asking, the conversation log, the composer, the examples, clearing.
 *
 * Turns live in the conversation store; this module draws them with render.js and gives the
 * rendered nodes their actions (ask again, open a source, send feedback, copy).
 */

import * as api from './api.js';
import * as conversation from './conversation.js';
import { copyText } from './clipboard.js';
import { finePointer, h, scrollBehavior } from './dom.js';
import { answerPlainText, pendingBubble, renderMessage } from './render.js';
import { closeSource, hasFocus as panelHasFocus, isOpen as panelIsOpen, openSource } from './source.js';
import { flashButton, toast } from './toast.js';

export const MAX_LEN = 1000;
const COUNTER_FROM = 800;
const TOP_K = 5;
const EXAMPLES_SHOWN = 4;

const els = {};
let pending = null; // { controller, bubble }
let examplesRequested = false;
let hintTimer = 0;

const actions = {
  ask: (question) => ask(question),
  openSource,
  knownTitle: conversation.knownTitle,
  async feedback(msg, citation, helpful) {
    const result = await api.sendFeedback(msg.question || msg.data.question, citation, helpful);
    if (result.ok) conversation.rate(msg, citation.n, helpful ? 'up' : 'down');
    return result;
  },
  async copyAnswer(msg, btn) {
    const ok = await copyText(answerPlainText(msg));
    flashButton(btn, ok ? 'Copied' : 'Copy failed');
    toast(ok ? 'Answer copied to the clipboard' : 'Couldn’t copy. Select the text and copy it by hand.');
  },
};

/* ------------------------------------------------------------------ *
 * The log
 * ------------------------------------------------------------------ */

function renderAll() {
  const turns = conversation.all();
  els.log.replaceChildren(...turns.map((msg, i) => renderMessage(msg, i === turns.length - 1, actions)));
  updateWelcome();
}

function appendMessage(msg) {
  conversation.push(msg);
  els.log.querySelectorAll('.retry').forEach((b) => b.remove());
  const node = renderMessage(msg, true, actions);
  els.log.append(node);
  updateWelcome();
  return node;
}

function updateWelcome() {
  const empty = conversation.isEmpty() && !pending;
  els.welcome.hidden = !empty;
  document.body.classList.toggle('is-empty', empty);
  if (empty) loadExamples();
}

/* ------------------------------------------------------------------ *
 * Asking
 * ------------------------------------------------------------------ */

function setPending(on) {
  els.question.disabled = on;
  els.send.disabled = on;
  els.composer.classList.toggle('busy', on);
  els.log.setAttribute('aria-busy', on ? 'true' : 'false');
}

export async function ask(rawQuestion) {
  const question = String(rawQuestion ?? '').trim().slice(0, MAX_LEN);
  if (pending) return;
  if (!question) {
    showHint('Type a question first.');
    els.question.focus();
    return;
  }
  showHint(null);
  const history = conversation.history(); // the turns before this question
  const qNode = appendMessage({ id: conversation.nextId(), role: 'question', text: question });
  els.question.value = '';
  updateComposer();

  const controller = new AbortController();
  const bubble = pendingBubble();
  pending = { controller, bubble };
  els.log.append(bubble);
  setPending(true);
  els.scroller.scrollTo({ top: els.scroller.scrollHeight, behavior: scrollBehavior() });

  const result = await api.ask(question, TOP_K, controller, history);
  if (!pending || pending.controller !== controller) return; // the conversation was cleared
  bubble.remove();
  pending = null;
  setPending(false);

  const id = conversation.nextId();
  const node = appendMessage(
    result.ok
      ? { id, role: 'answer', question, data: result.answer, feedback: {} }
      : { id, role: 'error', question, code: result.code || 'error', message: result.message }
  );
  // Show the question and the start of the reply; don't jump past a long answer.
  const scroller = els.scroller;
  const fits = node.offsetHeight + qNode.offsetHeight + 40 < scroller.clientHeight;
  if (fits) scroller.scrollTo({ top: scroller.scrollHeight, behavior: scrollBehavior() });
  else qNode.scrollIntoView({ behavior: scrollBehavior(), block: 'start' });
  if (!panelHasFocus() && finePointer.matches) els.question.focus({ preventScroll: true });
}

function clearConversation() {
  if (pending) {
    pending.controller.abort();
    pending.bubble.remove();
    pending = null;
    setPending(false);
  }
  const had = conversation.clear();
  if (panelIsOpen()) closeSource({ restoreFocus: false });
  renderAll();
  els.question.focus();
  if (had.length) {
    toast('Conversation cleared', {
      label: 'Undo',
      run: () => {
        if (!conversation.isEmpty() || pending) return;
        conversation.restore(had);
        renderAll();
        els.scroller.scrollTop = els.scroller.scrollHeight;
      },
    });
  }
}

/* ------------------------------------------------------------------ *
 * Composer
 * ------------------------------------------------------------------ */

function showHint(text) {
  clearTimeout(hintTimer);
  if (!text) {
    els.hint.replaceChildren(
      h('kbd', { text: 'Enter' }), ' to send · ', h('kbd', { text: 'Shift' }), '+',
      h('kbd', { text: 'Enter' }), ' for a new line'
    );
    els.hint.classList.remove('warn');
    return;
  }
  els.hint.textContent = text;
  els.hint.classList.add('warn');
  hintTimer = setTimeout(() => showHint(null), 2500);
}

function updateComposer() {
  const value = els.question.value;
  const len = value.length;
  if (len >= COUNTER_FROM) {
    els.counter.hidden = false;
    els.counter.textContent = len + ' / ' + MAX_LEN;
    els.counter.classList.toggle('at-limit', len >= MAX_LEN);
  } else {
    els.counter.hidden = true;
    els.counter.textContent = '';
  }
  els.composer.classList.toggle('has-text', value.trim().length > 0);
  // Fallback autosize for browsers without `field-sizing: content`.
  if (!CSS.supports('field-sizing', 'content')) {
    els.question.rows = Math.min(8, Math.max(1, value.split('\n').length));
  }
}

/* ------------------------------------------------------------------ *
 * Examples
 * ------------------------------------------------------------------ */

async function loadExamples() {
  if (examplesRequested) return;
  examplesRequested = true;
  const picked = [];
  for (const q of await api.examples()) {
    const s = q.trim();
    if (s && s.length <= MAX_LEN && !picked.includes(s)) picked.push(s);
    if (picked.length === EXAMPLES_SHOWN) break;
  }
  els.examples.replaceChildren(
    ...picked.map((q) => {
      const b = h('button', { type: 'button', class: 'example', text: q });
      b.addEventListener('click', () => ask(q));
      return h('li', null, b);
    })
  );
  els.examplesLabel.hidden = picked.length === 0;
}

/* ------------------------------------------------------------------ *
 * Start
 * ------------------------------------------------------------------ */

export function focusComposer() {
  els.question.focus();
}

/** Find the chat's elements, wire the composer, and draw the saved conversation. */
export function initChat() {
  const byId = (id) => document.getElementById(id);
  Object.assign(els, {
    scroller: byId('scroller'),
    log: byId('log'),
    welcome: byId('welcome'),
    examples: byId('examples'),
    examplesLabel: byId('examples-label'),
    composer: byId('composer'),
    question: byId('question'),
    send: byId('send'),
    clear: byId('clear'),
    counter: byId('counter'),
    hint: byId('composer-hint'),
  });
  els.question.maxLength = MAX_LEN;

  els.composer.addEventListener('submit', (e) => {
    e.preventDefault();
    ask(els.question.value);
  });
  els.question.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      ask(els.question.value);
    }
  });
  els.question.addEventListener('input', updateComposer);
  els.clear.addEventListener('click', clearConversation);

  conversation.load();
  renderAll();
  updateComposer();
  showHint(null);
  els.scroller.scrollTop = els.scroller.scrollHeight;
}
