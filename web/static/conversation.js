/* The conversation store: the turns of this tab's conversation, kept in sessionStorage so a
 * reload (or a visit to /doc/… and back) keeps them.
 *
 * A turn is one of
 *   { id, role: 'question', text }
 *   { id, role: 'answer', question, data: <answer object, as readAnswer returns it>, feedback }
 *   { id, role: 'error', question, code, message }
 * feedback maps a citation's n to 'up' or 'down'. A saved answer is read back through
 * api.readAnswer, the same check a fresh one passes.
 */

import { readAnswer } from './api.js';
import { shiftSpans } from './offsets.js';

const STORE_KEY = 'newsqa.conversation.v2';

let messages = [];
let seq = 0;

export function all() {
  return messages;
}

export function isEmpty() {
  return messages.length === 0;
}

export function nextId() {
  seq += 1;
  return 'm' + seq;
}

export function push(msg) {
  messages.push(msg);
  save();
  return msg;
}

/** Empty the conversation; returns what it held (for undo). */
export function clear() {
  const had = messages;
  messages = [];
  save();
  return had;
}

export function restore(turns) {
  messages = turns;
  save();
}

/** Remember that citation `n` of answer turn `msg` was rated. */
export function rate(msg, n, kind) {
  msg.feedback[n] = kind;
  save();
}

export function save() {
  try {
    sessionStorage.setItem(STORE_KEY, JSON.stringify({ v: 2, seq, messages }));
  } catch (_) {
    /* storage full or disabled: the conversation just won't survive a reload */
  }
}

function readTurn(m) {
  if (!m || typeof m !== 'object' || typeof m.id !== 'string') return null;
  const text = (v) => (typeof v === 'string' ? v : '');
  if (m.role === 'question') return { id: m.id, role: 'question', text: text(m.text) };
  if (m.role === 'answer') {
    const data = readAnswer(m.data);
    if (!data) return null;
    const feedback = {};
    if (m.feedback && typeof m.feedback === 'object') {
      for (const [n, kind] of Object.entries(m.feedback)) {
        if (kind === 'up' || kind === 'down') feedback[n] = kind;
      }
    }
    return { id: m.id, role: 'answer', question: text(m.question), data, feedback };
  }
  if (m.role === 'error') {
    return {
      id: m.id,
      role: 'error',
      question: text(m.question),
      code: text(m.code),
      message: text(m.message),
    };
  }
  return null;
}

/** Read the saved conversation (if any) into the store. */
export function load() {
  try {
    const raw = sessionStorage.getItem(STORE_KEY);
    if (!raw) return;
    const data = JSON.parse(raw);
    if (!data || !Array.isArray(data.messages)) return;
    messages = data.messages.map(readTurn).filter(Boolean);
    const saved = Number(data.seq);
    seq = Math.max(Number.isInteger(saved) ? saved : 0, messages.length);
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
    messages = [];
  }
}

/* ------------------------------------------------------------------ *
 * Look-ups over the answers given so far
 * ------------------------------------------------------------------ */

function* citations() {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].role === 'answer') yield* messages[i].data.citations;
  }
}

/** The title a citation gave for `docId`, or null. */
export function knownTitle(docId) {
  for (const c of citations()) if (c.doc_id === docId) return c.title;
  return null;
}

/** The highlights a citation gave for the span [start, end) of `docId` (also via also_at). */
export function findHighlights(docId, start, end) {
  for (const c of citations()) {
    if (c.doc_id === docId && c.start === start && c.end === end) return c.highlights;
    for (const loc of c.also_at) {
      if (loc.doc_id === docId && loc.start === start && loc.end === end) {
        return shiftSpans(c.highlights, loc.start - c.start);
      }
    }
  }
  return [];
}

/* ------------------------------------------------------------------ *
 * The conversation as the API's history
 * ------------------------------------------------------------------ */

export const MAX_HISTORY_TURNS = 10; // the API's limit (qa/ask/followup.py MAX_TURNS)
const MAX_ANSWER_CHARS = 4000;
const MAX_TURN_CITATIONS = 20;
const MAX_HISTORY_BYTES = 12 * 1024; // the body limit is 16 KiB; leave room for the question

/**
 * The visible conversation's answered turns, oldest first, as `history` for POST /api/ask:
 * the last MAX_HISTORY_TURNS, each { question, answer, citations: [{ doc_id, start, end }] },
 * the oldest dropped until the whole fits well inside the request body limit.
 */
export function history() {
  const turns = [];
  for (const m of messages) {
    if (m.role !== 'answer' || !m.question) continue;
    turns.push({
      question: m.question,
      answer: m.data.answer.slice(0, MAX_ANSWER_CHARS),
      citations: m.data.citations
        .slice(0, MAX_TURN_CITATIONS)
        .map((c) => ({ doc_id: c.doc_id, start: c.start, end: c.end })),
    });
  }
  const out = turns.slice(-MAX_HISTORY_TURNS);
  const size = () => new TextEncoder().encode(JSON.stringify(out)).length;
  while (out.length && size() > MAX_HISTORY_BYTES) out.shift();
  return out;
}
