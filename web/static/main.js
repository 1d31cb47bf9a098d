/* News Q&A — the chat page's entry point: native ES modules, no framework, no build step.
 *
 *   api.js           the API client: requests, the error shape, the one check of an answer
 *   conversation.js  the conversation store (sessionStorage)
 *   offsets.js       code-point offsets and highlight spans
 *   render.js        turns (answers, citations, errors) as DOM nodes
 *   source.js        the source panel and its /doc/… address
 *   chat.js          asking, the log, the composer, the examples
 *   dom.js, toast.js, clipboard.js   small helpers
 *
 * Works under Content-Security-Policy script-src 'self' (no inline script or style). Server text
 * is only ever inserted as text (textContent / Text nodes), never parsed as HTML.
 */

import { focusComposer, initChat } from './chat.js';
import { finePointer } from './dom.js';
import { cpToUtf16 } from './offsets.js';
import { initSource, isOpen, routeFromLocation } from './source.js';

// Exposed for tests and debugging only (a pure helper, no side effects).
window.NewsQA = Object.freeze({ cpToUtf16 });

// A module runs after the document is parsed: the elements are there.
initSource({ focusComposer });
initChat();
routeFromLocation(true);
if (!isOpen() && finePointer.matches) document.getElementById('question').focus({ preventScroll: true });
