// A command line to an argv and back, with POSIX shell quoting rules and
// nothing else: no shell ever runs a job (SPEC §5, "started with an argv
// array"), so nothing is expanded. `$HOME`, `*`, `~`, `#`, `;`, `|`, `&&`,
// `$(…)` and backquotes are plain characters of the word they stand in.
//
// The rules (POSIX.1-2017 XCU 2.2, quoting; 2.3, token recognition):
// - words are split on unquoted blanks (space, tab, newline);
// - a backslash outside quotes keeps the next character literally; a
//   backslash before a newline is a line continuation and both go;
// - '…' keeps everything literally up to the next ' (no escape inside);
// - "…" keeps everything literally but a backslash before $ ` " \ or a
//   newline, which escapes it (a backslash-newline goes, as outside quotes);
//   before anything else the backslash stays;
// - a quoted empty string ('' or "") is an argument of its own;
// - an unterminated quote, or a backslash that ends the line, is an error
//   at the position (UTF-16 index) of the quote or backslash.
//
//   line                         argv
//   train.py --lr 0.3            ["train.py", "--lr", "0.3"]
//   --lr '0.3 x'                 ["--lr", "0.3 x"]
//   "a\"b"                       ['a"b']
//   c\ d                         ["c d"]
//   '' ""                        ["", ""]
//   $HOME ~ *.py a;b 'x'|y &&    ["$HOME", "~", "*.py", "a;b", "x|y", "&&"]
//   'it'\''s'                    ["it's"]
//   "\$ \` \\ \a"                ["$ ` \\ \\a"]      (\a keeps its backslash)
//   'a\b'                        ["a\\b"]           (no escape in '…')
//   a"b c"'d e'f                 ["ab cd ef"]       (one word, three quotings)
//   a\<newline>b                 ["ab"]             (line continuation)
//   "a<newline>b"                ["a\nb"]
//   a<newline>b                  ["a", "b"]
//   (empty, or blanks only)      []
//   'abc                         error at 0: unterminated '
//   x "abc                       error at 2: unterminated "
//   abc\                         error at 3: a backslash ends the line
//
// quoteArgv is parseArgv's inverse: a word made only of letters, digits
// and _ @ % + = : , . / - stays bare; any other word goes in single quotes,
// each ' in it written '\'' — so that parseArgv(quoteArgv(argv)) gives
// argv back exactly (the line also means the same to a real POSIX shell).

const BLANKS = ' \t\n';

// {argv: [string]} for a command line, or {error: string, at: number}.
export function parseArgv(line) {
  const argv = [];
  let word = '';
  // Whether a word is under way (a quoted empty string is one).
  let inWord = false;
  let i = 0;
  const n = line.length;
  while (i < n) {
    const c = line[i];
    if (BLANKS.includes(c)) {
      if (inWord) { argv.push(word); word = ''; inWord = false; }
      i += 1;
    } else if (c === '\\') {
      if (i + 1 >= n) return { error: 'a backslash ends the line: it has nothing to escape', at: i };
      if (line[i + 1] !== '\n') { word += line[i + 1]; inWord = true; }
      i += 2;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) return { error: `unterminated single quote (') opened at character ${i + 1}`, at: i };
      word += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      const open = i;
      i += 1;
      for (;;) {
        if (i >= n) return { error: `unterminated double quote (") opened at character ${open + 1}`, at: open };
        const d = line[i];
        if (d === '"') { i += 1; break; }
        if (d === '\\' && i + 1 < n && '$`"\\\n'.includes(line[i + 1])) {
          if (line[i + 1] !== '\n') word += line[i + 1];
          i += 2;
        } else {
          word += d;
          i += 1;
        }
      }
      inWord = true;
    } else {
      word += c;
      inWord = true;
      i += 1;
    }
  }
  if (inWord) argv.push(word);
  return { argv };
}

const BARE = /^[\p{L}\p{N}_@%+=:,./-]+$/u;

// The word as parseArgv reads it back: bare when it is safe so, else in
// single quotes.
export function quoteWord(word) {
  return BARE.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

// A command line that parseArgv reads back as exactly `argv`.
export function quoteArgv(argv) {
  return argv.map(quoteWord).join(' ');
}
