/* Character offsets and highlight spans.
 *
 * The API speaks Python string indices (Unicode code points), absolute in the document; the DOM
 * speaks UTF-16 code units. Everything here converts before slicing, clips spans to the part of
 * the text being shown, and nests highlight elements over a text without ever parsing it.
 */

/** A function mapping a code-point index in `str` to a UTF-16 index (clamped to the string). */
export function codePointIndexer(str) {
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
export function cpToUtf16(str, cp) {
  return codePointIndexer(str)(cp);
}

/** Sort, clip to [lo, hi), drop empty, merge overlapping ranges. */
export function normaliseRanges(ranges, lo, hi) {
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

/** Highlights moved by `shift` code points (the same passage standing elsewhere: also_at). */
export function shiftSpans(spans, shift) {
  return spans.map(([a, b]) => [a + shift, b + shift]);
}

/**
 * Render text[a, b) into `parent`, nesting elements for the given layers (outermost first).
 * Each layer: { ranges: [[s, e], …] sorted and disjoint, make: (s, e) => Element }.
 * `leaf(parent, s, e)` renders the plain text of the innermost level.
 */
export function renderLayers(parent, a, b, layers, leaf, depth = 0) {
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
    if (from > pos) renderLayers(parent, pos, from, layers, leaf, depth + 1);
    const wrapper = layer.make(from, to);
    parent.append(wrapper);
    renderLayers(wrapper, from, to, layers, leaf, depth + 1);
    pos = to;
  }
  if (pos < b) renderLayers(parent, pos, b, layers, leaf, depth + 1);
}

/**
 * A citation's highlights inside its own text, and the window of the text a card shows in full:
 * about `context` UTF-16 units either side of the highlights, cut at spaces. Returns
 * { highlights, start, end } in UTF-16 units of `citation.text`.
 */
export function cardWindow(citation, context) {
  const text = citation.text;
  const idx = codePointIndexer(text);
  const len = text.length;
  const hls = normaliseRanges(
    citation.highlights.map(([a, b]) => [idx(a - citation.start), idx(b - citation.start)]),
    0,
    len
  );
  let vs = 0;
  let ve = len;
  if (hls.length) {
    vs = hls[0][0] - context;
    ve = hls[hls.length - 1][1] + context;
  } else {
    ve = context * 2;
  }
  if (vs <= 40) vs = 0;
  else {
    const sp = text.slice(vs).search(/\s/);
    const limit = hls.length ? hls[0][0] : len;
    vs = sp < 0 || vs + sp >= limit ? (hls.length ? hls[0][0] : 0) : vs + sp + 1;
  }
  if (ve >= len - 40) ve = len;
  else {
    const sp = text.lastIndexOf(' ', ve);
    const floor = hls.length ? hls[hls.length - 1][1] : vs;
    ve = sp > floor ? sp : Math.max(floor, Math.min(len, ve));
  }
  return { highlights: hls, start: vs, end: ve };
}

/**
 * The cited passage and its highlights in a document's text, in UTF-16 units:
 * { passage: [s, e] | null, highlights: [[s, e], …] inside the passage }.
 */
export function documentSpans(text, start, end, highlights) {
  const idx = codePointIndexer(text);
  let passage = null;
  if (start != null && end != null) {
    const ps = idx(start);
    const pe = idx(end);
    if (pe > ps) passage = [ps, pe];
  }
  const hls = passage
    ? normaliseRanges(
        (highlights || []).map(([a, b]) => [idx(a), idx(b)]),
        passage[0],
        passage[1]
      )
    : [];
  return { passage, highlights: hls, index: idx };
}
