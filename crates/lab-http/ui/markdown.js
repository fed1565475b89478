// A safe subset of Markdown into DOM nodes: what runs write as notes
// (MLflow's `mlflow.note.content`, TensorBoard text summaries).
//
// The subset: ATX headings, paragraphs, emphasis (`*`/`_`) and strong
// (`**`/`__`), code spans and fenced code blocks, flat lists (`-`, `*`,
// `+`, `1.`), GFM tables, and links `[text](url)` whose URL is `http(s)`
// (opened with `rel="noopener noreferrer"`); anything else stays text. The
// renderer builds nodes itself — `createElement` of the tags in ALLOWED
// and text nodes — and never parses HTML, so nothing a run wrote becomes
// markup: `<script>` is the text `<script>`. Bounded: 64 KiB of input
// (the rest cut with a note), inline nesting 8 deep, each delimiter
// scanned for once per span (no quadratic scan).

export const MAX_INPUT = 64 * 1024;
const MAX_DEPTH = 8;
const MAX_COLUMNS = 64;

// Every element the renderer can make, and the only attributes it sets.
export const ALLOWED = {
  tags: ['div', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'p', 'em', 'strong', 'code', 'pre', 'ul', 'ol', 'li', 'a', 'table', 'thead', 'tbody', 'tr', 'th', 'td'],
  attributes: { a: ['href', 'rel', 'target'], ol: ['start'] },
};

const SAFE_URL = /^https?:\/\/[^\s<>"'`\\]+$/i;

function node(tag, ...children) {
  const made = document.createElement(tag);
  for (const child of children) if (child !== null && child !== undefined) made.append(child);
  return made;
}

// `text` as a `div.markdown` of blocks.
export function renderMarkdown(text) {
  let source = String(text ?? '').replace(/\r\n?/g, '\n');
  const cut = source.length > MAX_INPUT;
  if (cut) source = source.slice(0, MAX_INPUT);
  const root = node('div');
  root.className = 'markdown';
  blocks(source.split('\n'), root);
  if (cut) root.append(node('p', node('em', `… cut at ${MAX_INPUT / 1024} KiB`)));
  return root;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t](.*))?$/;
const ITEM = /^ {0,3}([-*+]|(\d{1,9})[.)])[ \t]+(.*)$/;
// A table's rule row (`|---|:-:|`), checked by hand: the one regular
// expression for it backtracks quadratically on a long run of spaces.
function isRuleRow(line) {
  let row = line.trim();
  if (row.startsWith('|')) row = row.slice(1);
  if (row.endsWith('|')) row = row.slice(0, -1);
  const cells = row.split('|');
  return cells.length > 0 && cells.every((c) => /^:?-+:?$/.test(c.trim()));
}

function blocks(lines, into) {
  let i = 0;
  let paragraph = [];
  const flush = () => {
    if (paragraph.length) into.append(node('p', ...inline(paragraph.join(' '))));
    paragraph = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      flush();
      const mark = fence[1];
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trimStart().startsWith(mark)) body.push(lines[i++]);
      i += 1;
      into.append(node('pre', node('code', body.join('\n'))));
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      flush();
      into.append(node(`h${heading[1].length}`, ...inline(headingText(heading[2] || ''))));
      i += 1;
      continue;
    }
    if (line.includes('|') && i + 1 < lines.length && lines[i + 1].includes('-') && isRuleRow(lines[i + 1])) {
      flush();
      const head = cells(line);
      const table = node('table', node('thead', node('tr', ...head.map((c) => node('th', ...inline(c))))));
      const body = node('tbody');
      i += 2;
      while (i < lines.length && lines[i].includes('|') && lines[i].trim()) {
        const row = cells(lines[i++]);
        body.append(node('tr', ...head.map((_, k) => node('td', ...inline(row[k] || '')))));
      }
      table.append(body);
      into.append(table);
      continue;
    }
    const item = ITEM.exec(line);
    if (item) {
      flush();
      const ordered = item[2] !== undefined;
      const list = node(ordered ? 'ol' : 'ul');
      if (ordered && item[2] !== '1') list.setAttribute('start', String(Number(item[2])));
      while (i < lines.length) {
        const next = ITEM.exec(lines[i]);
        if (!next || (next[2] !== undefined) !== ordered) break;
        const text = [next[3]];
        i += 1;
        // Continuation lines: indented, not an item, not blank.
        while (i < lines.length && /^[ \t]{2,}\S/.test(lines[i]) && !ITEM.exec(lines[i])) text.push(lines[i++].trim());
        list.append(node('li', ...inline(text.join(' '))));
      }
      into.append(list);
      continue;
    }
    if (!line.trim()) flush();
    else paragraph.push(line.trim());
    i += 1;
  }
  flush();
}

// A heading's text without its closing `#`s (`## Title ##`), found by
// hand: a regular expression for it backtracks on long runs of spaces.
function headingText(raw) {
  const text = raw.trim();
  let end = text.length;
  while (end > 0 && text[end - 1] === '#') end -= 1;
  if (end === 0) return '';
  if (end < text.length && (text[end - 1] === ' ' || text[end - 1] === '\t')) return text.slice(0, end).trimEnd();
  return text;
}

// A table row's cells: split on `|` not escaped, the outer ones dropped.
function cells(line) {
  const out = [];
  let cell = '';
  for (let i = 0; i < line.length; i += 1) {
    if (line[i] === '\\' && line[i + 1] === '|') {
      cell += '|';
      i += 1;
    } else if (line[i] === '|') {
      out.push(cell);
      cell = '';
    } else cell += line[i];
  }
  out.push(cell);
  const trimmed = out.map((c) => c.trim());
  if (line.trim().startsWith('|')) trimmed.shift();
  if (line.trim().endsWith('|') && !line.trim().endsWith('\\|')) trimmed.pop();
  return trimmed.slice(0, MAX_COLUMNS);
}

const PUNCTUATION = /[!-/:-@[-`{-~]/;

// Inline spans of `text` as nodes. `found` remembers, for each delimiter
// looked for, where it was next found (-1: nowhere): searches only move
// forward, so that answer stands until the scan passes it, and each
// delimiter is scanned for once over the text, not once per opener.
function inline(text, depth = 0, inLink = false, found = new Map()) {
  const out = [];
  let plain = '';
  const push = (n) => {
    if (plain) out.push(plain);
    plain = '';
    out.push(n);
  };
  const find = (needle, from) => {
    const known = found.get(needle);
    if (known === -1 || (known !== undefined && known >= from)) return known;
    const at = text.indexOf(needle, from);
    found.set(needle, at);
    return at;
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\' && i + 1 < text.length && PUNCTUATION.test(text[i + 1])) {
      plain += text[i + 1];
      i += 2;
      continue;
    }
    if (c === '`') {
      let run = 1;
      while (text[i + run] === '`') run += 1;
      const tick = '`'.repeat(run);
      const end = find(tick, i + run);
      if (end >= 0) {
        push(node('code', text.slice(i + run, end).trim() || text.slice(i + run, end)));
        i = end + run;
        continue;
      }
      plain += tick;
      i += run;
      continue;
    }
    if (depth < MAX_DEPTH && (c === '*' || c === '_')) {
      const strong = text[i + 1] === c;
      const mark = strong ? c + c : c;
      const start = i + mark.length;
      // An opener is followed by a non-space; `_` inside a word is text.
      const opens = start < text.length && !/\s/.test(text[start]) && !(c === '_' && /\w/.test(text[i - 1] || ''));
      const end = opens ? find(mark, start + 1) : -1;
      if (end > start) {
        push(node(strong ? 'strong' : 'em', ...inline(text.slice(start, end), depth + 1, inLink)));
        i = end + mark.length;
        continue;
      }
      plain += mark;
      i += mark.length;
      continue;
    }
    if (c === '[' && !inLink && depth < MAX_DEPTH) {
      const close = find('](', i + 1);
      const end = close >= 0 ? find(')', close + 2) : -1;
      if (close >= 0 && end >= 0) {
        const url = text.slice(close + 2, end).trim();
        const label = text.slice(i + 1, close);
        if (SAFE_URL.test(url)) {
          const a = node('a', ...inline(label, depth + 1, true));
          a.setAttribute('href', url);
          a.setAttribute('rel', 'noopener noreferrer');
          a.setAttribute('target', '_blank');
          push(a);
          i = end + 1;
          continue;
        }
      }
    }
    plain += c;
    i += 1;
  }
  if (plain) out.push(plain);
  return out;
}
