/* The API client: every request the page makes, and the one place that checks what came back.
 *
 * Every call resolves (never throws) to { ok: true, ... } or to a failure
 * { ok: false, status, code, message } — the server's own {"error": {"code", "message"}} when it
 * sent one, else a sentence of ours. An answer (POST /api/ask, see README "HTTP API" and
 * qa/web/schema.py) is checked against its documented shape here, in readAnswer, and nowhere
 * else; the conversation store runs a saved answer through the same function when it reloads.
 */

const REQUEST_TIMEOUT_MS = 90000;
const UNREADABLE = 'The server sent a response that could not be read.';

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

function failure(status, code, message) {
  return { ok: false, status, code, message };
}

const TIMED_OUT = () => failure(0, 'timeout', 'The server took too long to answer. Please try again.');

/** fetch JSON (GET without a body, POST with one); { ok, status, data } or a failure. */
export async function request(url, body, opts) {
  const options = opts || {};
  const controller = options.controller || new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeout || REQUEST_TIMEOUT_MS);
  const post = body !== undefined;
  let res;
  try {
    res = await fetch(url, {
      method: post ? 'POST' : 'GET',
      headers: post
        ? { Accept: 'application/json', 'Content-Type': 'application/json' }
        : { Accept: 'application/json' },
      body: post ? JSON.stringify(body) : undefined,
      signal: controller.signal,
      credentials: 'same-origin',
    });
  } catch (_) {
    clearTimeout(timer);
    if (timedOut) return TIMED_OUT();
    if (controller.signal.aborted) return failure(0, 'aborted', 'Cancelled.');
    return failure(0, 'network', 'Couldn’t reach the server. Check your connection and try again.');
  }
  let data = null;
  try {
    data = await res.json();
  } catch (_) {
    data = null;
  }
  clearTimeout(timer);
  if (timedOut) return TIMED_OUT();
  if (res.ok && isObject(data)) return { ok: true, status: res.status, data };
  if (res.ok) return failure(res.status, 'bad_response', UNREADABLE);
  const err = isObject(data) && isObject(data.error) ? data.error : {};
  const given = typeof err.message === 'string' ? err.message.trim() : '';
  let message =
    given || STATUS_TEXT[res.status] || 'The server returned an error (HTTP ' + res.status + ').';
  if (res.status === 429) {
    const retry = parseInt(res.headers.get('Retry-After') || '', 10);
    if (Number.isFinite(retry) && retry > 0 && !/\d+\s*s/.test(message)) {
      message += ' (try again in ' + retry + ' s)';
    }
  }
  const code = typeof err.code === 'string' && err.code ? err.code : 'http_' + res.status;
  return failure(res.status, code, message);
}

/* ------------------------------------------------------------------ *
 * Shapes
 * ------------------------------------------------------------------ */

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
const isString = (v) => typeof v === 'string';
const isOffset = (v) => Number.isInteger(v) && v >= 0;
const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);
const isSpan = (p) => Array.isArray(p) && p.length === 2 && isOffset(p[0]) && isOffset(p[1]);

function readLocation(x) {
  if (!isObject(x) || !isString(x.doc_id) || !isOffset(x.start) || !isOffset(x.end)) return null;
  return { doc_id: x.doc_id, start: x.start, end: x.end };
}

function readCitation(c) {
  if (!isObject(c)) return null;
  const ok =
    Number.isInteger(c.n) && c.n >= 1 &&
    isString(c.doc_id) && c.doc_id !== '' &&
    isString(c.title) &&
    (c.byline === null || isString(c.byline)) &&
    isString(c.section) &&
    isOffset(c.start) && isOffset(c.end) && c.end >= c.start &&
    isString(c.text) &&
    Array.isArray(c.highlights) && c.highlights.every(isSpan) &&
    isNumber(c.score) &&
    isString(c.doc_sha256) &&
    Array.isArray(c.also_at);
  if (!ok) return null;
  const alsoAt = c.also_at.map(readLocation);
  if (alsoAt.includes(null)) return null;
  return {
    n: c.n,
    doc_id: c.doc_id,
    title: c.title,
    byline: c.byline,
    section: c.section,
    start: c.start,
    end: c.end,
    text: c.text,
    highlights: c.highlights.map(([a, b]) => [a, b]),
    score: c.score,
    doc_sha256: c.doc_sha256,
    also_at: alsoAt,
    // Answers saved before `used` existed: every citation counts as used.
    used: typeof c.used === 'boolean' ? c.used : true,
  };
}

/** The short answer {text, doc_id, start, end}, or null (absent, null or malformed). */
function readShortAnswer(s) {
  if (!isObject(s) || !isString(s.text) || s.text === '' || !isString(s.doc_id)) return null;
  if (!isOffset(s.start) || !isOffset(s.end) || s.end < s.start) return null;
  return { text: s.text, doc_id: s.doc_id, start: s.start, end: s.end };
}

/**
 * The answer object if `body` has the documented shape, else null. Known fields only, copied,
 * so the result can be stored and read back through this same function unchanged.
 */
export function readAnswer(body) {
  if (!isObject(body)) return null;
  const ok =
    isString(body.question) &&
    typeof body.answerable === 'boolean' &&
    isString(body.answer) &&
    Array.isArray(body.citations) &&
    isObject(body.timing_ms) &&
    isString(body.build);
  if (!ok) return null;
  const citations = body.citations.map(readCitation);
  if (citations.includes(null)) return null;
  const timing = {};
  for (const [k, v] of Object.entries(body.timing_ms)) if (isNumber(v)) timing[k] = v;
  return {
    question: body.question,
    searched: isString(body.searched) ? body.searched : body.question,
    answerable: body.answerable,
    answer: body.answer,
    short_answer: readShortAnswer(body.short_answer),
    citations,
    timing_ms: timing,
    build: body.build,
  };
}

/** A document (GET /api/documents/<id>) if `body` has the documented shape, else null. */
function readDocument(body) {
  if (!isObject(body)) return null;
  const ok =
    isString(body.id) &&
    isString(body.title) &&
    (body.byline === null || isString(body.byline)) &&
    isString(body.sha256) &&
    isString(body.text) &&
    Array.isArray(body.sections) &&
    body.sections.every(
      (s) => isObject(s) && isString(s.heading) && isOffset(s.start) && isOffset(s.end)
    );
  if (!ok) return null;
  return {
    id: body.id,
    title: body.title,
    byline: body.byline,
    sha256: body.sha256,
    text: body.text,
    sections: body.sections.map((s) => ({ heading: s.heading, start: s.start, end: s.end })),
  };
}

/* ------------------------------------------------------------------ *
 * Endpoints
 * ------------------------------------------------------------------ */

/**
 * POST /api/ask: { ok: true, answer } or a failure. `history`: the earlier turns, oldest first,
 * each { question, answer, citations: [{ doc_id, start, end }] } (see conversation.history).
 */
export async function ask(question, topK, controller, history) {
  const body = { question, top_k: topK };
  if (history && history.length) body.history = history;
  const result = await request('/api/ask', body, { controller });
  if (!result.ok) return result;
  const answer = readAnswer(result.data);
  return answer ? { ok: true, answer } : failure(result.status, 'bad_response', UNREADABLE);
}

/** POST /api/feedback: { ok: true } or a failure. */
export function sendFeedback(question, citation, helpful) {
  return request('/api/feedback', {
    question,
    doc_id: citation.doc_id,
    start: citation.start,
    end: citation.end,
    helpful,
  });
}

/** GET /api/examples: the example questions (none on any failure). */
export async function examples() {
  const result = await request('/api/examples', undefined, { timeout: 15000 });
  const questions = result.ok && Array.isArray(result.data.questions) ? result.data.questions : [];
  return questions.filter(isString);
}

const documents = new Map(); // doc_id -> Promise<{ ok: true, doc } | failure>

/** GET /api/documents/<id>, fetched once per page (failures are not kept). */
export function fetchDocument(docId) {
  if (!documents.has(docId)) {
    const url = '/api/documents/' + encodeURIComponent(docId);
    const p = request(url, undefined, { timeout: 30000 }).then((r) => {
      if (!r.ok) {
        documents.delete(docId);
        return r;
      }
      const doc = readDocument(r.data);
      if (doc) return { ok: true, doc };
      documents.delete(docId);
      return failure(r.status, 'bad_response', UNREADABLE);
    });
    documents.set(docId, p);
  }
  return documents.get(docId);
}

/** The document's result if it has already arrived, else null (without waiting). */
export async function loadedDocument(docId) {
  const cached = documents.get(docId);
  return cached ? Promise.race([cached, Promise.resolve(null)]) : null;
}
