//! The filter language of `GET /api/runs?filter=` and `lab runs --filter`
//! (SPEC §4): a pure, bounded parser into a [`Filter`] and its evaluation
//! on a [`RunSummary`].
//!
//! ```text
//! expr      := or
//! or        := and ( OR and )*
//! and       := unary ( AND unary )*
//! unary     := NOT unary | '(' expr ')' | predicate
//! predicate := field op literal
//!            | field ( LIKE | ILIKE ) string
//!            | field IN '(' literal ( ',' literal )* ')'
//! op        := '=' | '!=' | '<' | '<=' | '>' | '>='
//! field     := ( params | metrics | tags ) '.' key
//!            | status | format | experiment | experiment_name | name | created
//! key       := [A-Za-z0-9_/-]+ | '`' ( [^`] | '``' )+ '`'
//! literal   := string | number
//! string    := "'" ( [^'] | "''" )* "'" | '"' ( [^"] | '""' )* '"'
//! number    := [+-]? ( digits [ '.' digits? ] | '.' digits ) ( [eE] [+-]? digits )?
//! ```
//!
//! Keywords (`and`, `or`, `not`, `like`, `ilike`, `in`) are
//! case-insensitive. A value and a literal that both are numbers (a text
//! that parses as a finite number is one) compare as numbers; `created` as
//! its ISO 8601 text (`YYYY-MM-DDTHH:MM:SSZ`, byte-wise); other texts
//! byte-wise. A missing key, or a number against a text, makes a
//! comparison false (and `not` of it true).
//!
//! Bounds: [`MAX_LEN`] bytes of expression, [`MAX_DEPTH`] nested `not`s and
//! parentheses, [`MAX_TERMS`] predicates, [`MAX_IN`] items in an `IN` list,
//! [`MAX_PATTERN`] characters of a `LIKE` pattern, matched in time linear
//! in the text (see [`like`]), without recursion.

use std::fmt;

use serde_json::Value;

use crate::summaries::RunSummary;

/// Most bytes of an expression.
pub const MAX_LEN: usize = 4096;
/// Deepest nesting of parentheses and `not`.
pub const MAX_DEPTH: usize = 64;
/// Most predicates in one expression.
pub const MAX_TERMS: usize = 256;
/// Most items in one `IN` list.
pub const MAX_IN: usize = 1024;
/// Longest `LIKE` pattern, in characters.
pub const MAX_PATTERN: usize = 256;

/// What a predicate looks at.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    /// `params.KEY`.
    Param(String),
    /// `metrics.NAME`: its last value.
    Metric(String),
    /// `tags.KEY`: the value of a tag `KEY=VALUE` (a tag `KEY` alone has
    /// the value `''`).
    Tag(String),
    /// `status`.
    Status,
    /// `format`.
    Format,
    /// `experiment`: the experiment's id (missing where it has none).
    Experiment,
    /// `experiment_name`: the experiment's name.
    ExperimentName,
    /// `name`: the summary's name (the title that says what varied).
    Name,
    /// `created`.
    Created,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A literal value.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// A finite number.
    Number(f64),
    /// A string.
    Text(String),
}

/// A parsed filter expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// `field op literal`.
    Compare(Field, Op, Literal),
    /// `field LIKE 'pattern'` (`fold`: `ILIKE`).
    Like {
        /// What is matched.
        field: Field,
        /// `%` any run, `_` one character.
        pattern: String,
        /// ASCII case folded.
        fold: bool,
        /// The pattern made ready once, not for every run it is matched
        /// against.
        compiled: Like,
    },
    /// `field IN (a, b, …)`.
    In(Field, Vec<Literal>),
    /// `not x`.
    Not(Box<Filter>),
    /// `a and b and …` (two or more).
    And(Vec<Filter>),
    /// `a or b or …` (two or more).
    Or(Vec<Filter>),
}

/// A refused expression: where (a character index) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// The character index of the problem.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at character {}", self.message, self.position)
    }
}

impl std::error::Error for FilterError {}

struct Parser {
    chars: Vec<char>,
    at: usize,
    depth: usize,
    terms: usize,
}

fn err<T>(position: usize, message: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError {
        position,
        message: message.into(),
    })
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '/'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    /// The word at the cursor (without moving).
    fn word(&self) -> String {
        self.chars[self.at..]
            .iter()
            .take_while(|c| is_word_char(**c))
            .collect()
    }

    /// Takes keyword `kw` (case-insensitive, a whole word) if it is next.
    fn keyword(&mut self, kw: &str) -> bool {
        self.skip_space();
        let w = self.word();
        if w.eq_ignore_ascii_case(kw) {
            self.at += w.chars().count();
            true
        } else {
            false
        }
    }

    fn want(&mut self, c: char, what: &str) -> Result<(), FilterError> {
        self.skip_space();
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            err(self.at, format!("expected {what}"))
        }
    }

    fn deeper(&mut self, at: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(at, format!("nested deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut items = vec![self.and()?];
        while self.keyword("or") {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Filter::Or(items)
        })
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut items = vec![self.unary()?];
        while self.keyword("and") {
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Filter::And(items)
        })
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        self.skip_space();
        let start = self.at;
        if self.keyword("not") {
            self.deeper(start)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.peek() == Some('(') {
            self.deeper(start)?;
            self.at += 1;
            let inner = self.or()?;
            self.want(')', "')'")?;
            self.depth -= 1;
            return Ok(inner);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Filter, FilterError> {
        self.skip_space();
        let start = self.at;
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return err(start, format!("more than {MAX_TERMS} terms"));
        }
        let field = self.field()?;
        self.skip_space();
        let op_at = self.at;
        let op = match (self.peek(), self.chars.get(self.at + 1).copied()) {
            (Some('!'), Some('=')) => Some((Op::Ne, 2)),
            (Some('<'), Some('=')) => Some((Op::Le, 2)),
            (Some('>'), Some('=')) => Some((Op::Ge, 2)),
            (Some('='), _) => Some((Op::Eq, 1)),
            (Some('<'), _) => Some((Op::Lt, 1)),
            (Some('>'), _) => Some((Op::Gt, 1)),
            _ => None,
        };
        if let Some((op, len)) = op {
            self.at += len;
            self.skip_space();
            let at = self.at;
            let value = self.literal()?;
            check_time(&field, &value, at)?;
            return Ok(Filter::Compare(field, op, value));
        }
        for (kw, fold) in [("like", false), ("ilike", true)] {
            if self.keyword(kw) {
                self.skip_space();
                let at = self.at;
                return match self.literal()? {
                    Literal::Text(pattern) if pattern.chars().count() > MAX_PATTERN => err(
                        at,
                        format!("a LIKE pattern longer than {MAX_PATTERN} characters"),
                    ),
                    Literal::Text(pattern) => Ok(Filter::like(field, pattern, fold)),
                    Literal::Number(_) => err(at, "expected a quoted pattern"),
                };
            }
        }
        if self.keyword("in") {
            self.want('(', "'(' after IN")?;
            let mut items = Vec::new();
            loop {
                self.skip_space();
                if items.len() == MAX_IN {
                    return err(self.at, format!("more than {MAX_IN} items in IN"));
                }
                let at = self.at;
                let item = self.literal()?;
                check_time(&field, &item, at)?;
                items.push(item);
                self.skip_space();
                match self.peek() {
                    Some(',') => self.at += 1,
                    Some(')') => {
                        self.at += 1;
                        return Ok(Filter::In(field, items));
                    }
                    _ => return err(self.at, "expected ',' or ')'"),
                }
            }
        }
        err(op_at, "expected an operator (= != < <= > >= LIKE ILIKE IN)")
    }

    fn field(&mut self) -> Result<Field, FilterError> {
        let start = self.at;
        let w = self.word();
        if w.is_empty() {
            return err(start, "expected a field");
        }
        self.at += w.chars().count();
        let make: fn(String) -> Field = match w.as_str() {
            "status" => return Ok(Field::Status),
            "format" => return Ok(Field::Format),
            "experiment" => return Ok(Field::Experiment),
            "experiment_name" => return Ok(Field::ExperimentName),
            "name" => return Ok(Field::Name),
            "created" => return Ok(Field::Created),
            "params" => Field::Param,
            "metrics" => Field::Metric,
            "tags" => Field::Tag,
            _ => return err(start, format!("unknown field {w:?}")),
        };
        if self.peek() != Some('.') {
            return err(self.at, "expected '.' and a key");
        }
        self.at += 1;
        let key_at = self.at;
        let key = if self.peek() == Some('`') {
            self.quoted('`')?
        } else {
            let key: String = self.chars[self.at..]
                .iter()
                .take_while(|c| is_key_char(**c))
                .collect();
            self.at += key.chars().count();
            key
        };
        if key.is_empty() {
            return err(key_at, "expected a key");
        }
        Ok(make(key))
    }

    /// A `q`-quoted text at the cursor (which is on the opening quote).
    fn quoted(&mut self, q: char) -> Result<String, FilterError> {
        let start = self.at;
        self.at += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return err(start, "unterminated quote"),
                Some(c) if c == q => {
                    if self.chars.get(self.at + 1) == Some(&q) {
                        out.push(q);
                        self.at += 2;
                    } else {
                        self.at += 1;
                        return Ok(out);
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, FilterError> {
        self.skip_space();
        let start = self.at;
        match self.peek() {
            Some(q @ ('\'' | '"')) => Ok(Literal::Text(self.quoted(q)?)),
            Some(c) if c.is_ascii_digit() || matches!(c, '+' | '-' | '.') => self.number(),
            _ => err(start, "expected a value (a quoted string or a number)"),
        }
    }

    fn number(&mut self) -> Result<Literal, FilterError> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let from = p.at;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.at += 1;
            }
            p.at - from
        };
        if matches!(self.peek(), Some('+' | '-')) {
            self.at += 1;
        }
        let mut mantissa = digits(self);
        if self.peek() == Some('.') {
            self.at += 1;
            mantissa += digits(self);
        }
        if mantissa == 0 {
            return err(start, "malformed number");
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            self.at += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return err(start, "malformed number");
            }
        }
        if self.peek().is_some_and(|c| is_word_char(c) || c == '.') {
            return err(start, "malformed number");
        }
        let text: String = self.chars[start..self.at].iter().collect();
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Literal::Number(n)),
            _ => err(start, "number out of range"),
        }
    }
}

impl Filter {
    /// `field LIKE 'pattern'` (`ILIKE` with `fold`).
    pub fn like(field: Field, pattern: String, fold: bool) -> Filter {
        Filter::Like {
            compiled: Like::new(&pattern, fold),
            field,
            pattern,
            fold,
        }
    }

    /// Parses `expr`, or says where and why not.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        if expr.len() > MAX_LEN {
            return err(0, format!("filter longer than {MAX_LEN} bytes"));
        }
        let mut p = Parser {
            chars: expr.chars().collect(),
            at: 0,
            depth: 0,
            terms: 0,
        };
        let filter = p.or()?;
        p.skip_space();
        if p.at < p.chars.len() {
            return err(
                p.at,
                if p.peek() == Some(')') {
                    "unmatched ')'"
                } else {
                    "expected AND, OR or the end"
                },
            );
        }
        Ok(filter)
    }

    /// Whether `run` passes.
    pub fn matches(&self, run: &RunSummary) -> bool {
        match self {
            Filter::Compare(field, op, lit) => {
                value_of(field, run).is_some_and(|v| compare(field, &v, *op, lit))
            }
            Filter::Like {
                field, compiled, ..
            } => value_of(field, run).is_some_and(|v| compiled.matches(&v.text())),
            Filter::In(field, items) => value_of(field, run)
                .is_some_and(|v| items.iter().any(|lit| compare(field, &v, Op::Eq, lit))),
            Filter::Not(inner) => !inner.matches(run),
            Filter::And(items) => items.iter().all(|f| f.matches(run)),
            Filter::Or(items) => items.iter().any(|f| f.matches(run)),
        }
    }
}

/// A run's value of a field.
enum Val<'a> {
    Number(f64),
    Text(std::borrow::Cow<'a, str>),
}

impl Val<'_> {
    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Val::Number(n) => std::borrow::Cow::Owned(n.to_string()),
            Val::Text(t) => std::borrow::Cow::Borrowed(t),
        }
    }
}

fn value_of<'a>(field: &Field, run: &'a RunSummary) -> Option<Val<'a>> {
    use std::borrow::Cow::{Borrowed, Owned};
    Some(match field {
        Field::Param(k) => match run.param(k)? {
            Value::Number(n) => Val::Number(n.as_f64()?),
            Value::String(s) => Val::Text(Borrowed(s)),
            Value::Bool(b) => Val::Text(Borrowed(if *b { "true" } else { "false" })),
            Value::Null => return None,
            other => Val::Text(Owned(other.to_string())),
        },
        Field::Metric(k) => Val::Number(run.last(k)?),
        Field::Tag(k) => Val::Text(Borrowed(run.tag_value(k)?)),
        Field::Status => Val::Text(Borrowed(run.status.as_deref()?)),
        Field::Format => Val::Text(Borrowed(run.format)),
        Field::Experiment => Val::Text(Borrowed(&run.experiment.as_ref()?.id)),
        Field::ExperimentName => Val::Text(Borrowed(&run.experiment.as_ref()?.name)),
        Field::Name => Val::Text(Borrowed(&run.name)),
        Field::Created => Val::Text(Borrowed(&run.created)),
    })
}

/// A `created` comparison's text must be an ISO 8601 UTC time, whole or
/// cut short from the right (`2026`, `2026-01`, `2026-01-02`,
/// `2026-01-02T03:04`, `2026-01-02T03:04:05`, with `.fff` and `Z`), with
/// real dates and times: a byte-wise comparison with anything else would
/// quietly mean nothing.
fn check_time(field: &Field, value: &Literal, at: usize) -> Result<(), FilterError> {
    match (field, value) {
        (Field::Created, Literal::Text(text)) if !is_time(text) => err(
            at,
            "created compares with an ISO 8601 UTC time such as '2026-01-02T03:04:05Z' (or its start, '2026-01')",
        ),
        _ => Ok(()),
    }
}

/// Whether `text` is an ISO 8601 UTC time or a start of one (see
/// [`check_time`]).
fn is_time(text: &str) -> bool {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let num = |s: &str, len: usize| -> Option<u32> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let mut parts = date.split('-');
    let Some(year) = parts.next().and_then(|y| num(y, 4)) else {
        return false;
    };
    let month = parts.next().map(|m| num(m, 2));
    let day = parts.next().map(|d| num(d, 2));
    if parts.next().is_some() {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match (month, day) {
        (None, None) => return time.is_none(),
        (Some(Some(m @ 1..=12)), None) => {
            let _ = m;
            return time.is_none();
        }
        (Some(Some(m @ 1..=12)), Some(Some(d))) => {
            let days = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            if d == 0 || d > days {
                return false;
            }
        }
        _ => return false,
    }
    let Some(time) = time else {
        return true;
    };
    let (clock, fraction) = match time.split_once('.') {
        Some((c, f)) => (c, Some(f)),
        None => (time, None),
    };
    if fraction.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let fields: Vec<&str> = clock.split(':').collect();
    match fields.as_slice() {
        [h, m] => {
            fraction.is_none()
                && num(h, 2).is_some_and(|h| h < 24)
                && num(m, 2).is_some_and(|m| m < 60)
        }
        [h, m, sec] => {
            num(h, 2).is_some_and(|h| h < 24)
                && num(m, 2).is_some_and(|m| m < 60)
                && num(sec, 2).is_some_and(|s| s <= 60)
        }
        _ => false,
    }
}

fn as_number(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && !text.trim().is_empty())
}

fn compare(field: &Field, value: &Val<'_>, op: Op, lit: &Literal) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = if *field == Field::Created {
        // Timestamps: ISO 8601 texts, compared byte-wise.
        match (value, lit) {
            (Val::Text(v), Literal::Text(l)) => Some(v.as_bytes().cmp(l.as_bytes())),
            _ => None,
        }
    } else {
        let v_num = match value {
            Val::Number(n) => Some(*n),
            Val::Text(t) => as_number(t),
        };
        let l_num = match lit {
            Literal::Number(n) => Some(*n),
            Literal::Text(t) => as_number(t),
        };
        match (v_num, l_num, value, lit) {
            (Some(a), Some(b), _, _) => a.partial_cmp(&b),
            (_, _, Val::Text(v), Literal::Text(l)) => Some(v.as_bytes().cmp(l.as_bytes())),
            _ => None,
        }
    };
    let Some(o) = ordering else { return false };
    match op {
        Op::Eq => o == Ordering::Equal,
        Op::Ne => o != Ordering::Equal,
        Op::Lt => o == Ordering::Less,
        Op::Le => o != Ordering::Greater,
        Op::Gt => o == Ordering::Greater,
        Op::Ge => o != Ordering::Less,
    }
}

/// SQL `LIKE`: `%` any run of characters, `_` one (see [`Like`]).
pub fn like(text: &str, pattern: &str, fold: bool) -> bool {
    Like::new(pattern, fold).matches(text)
}

/// A `LIKE` pattern made ready to match: its parts between `%`s, each
/// found in order at its leftmost place (which is where a match can always
/// put it): the first anchored at the start, the last at the end, the
/// others searched for by bit-parallel matching (Shift-And, `_` matching
/// any character, the masks built here once), so a match costs
/// O(text × ⌈part / 64⌉) whatever the pattern — at most [`MAX_PATTERN`]
/// characters, so O(text × 4).
#[derive(Clone, Debug, PartialEq)]
pub struct Like {
    fold: bool,
    first: Vec<char>,
    /// The part after the last `%`; `None` without one.
    last: Option<Vec<char>>,
    /// The non-empty parts between the first and the last.
    middle: Vec<Part>,
}

/// A middle part and its Shift-And masks.
#[derive(Clone, Debug, PartialEq)]
struct Part {
    len: usize,
    /// Where the part has `_` (matched by any character).
    any: Vec<u64>,
    /// For each character the part names, where it matches (`any` too).
    masks: std::collections::HashMap<char, Vec<u64>>,
}

impl Part {
    fn new(part: &[char]) -> Self {
        let words = part.len().div_ceil(64);
        let mut any = vec![0u64; words];
        for (i, p) in part.iter().enumerate() {
            if *p == '_' {
                any[i / 64] |= 1 << (i % 64);
            }
        }
        let mut masks: std::collections::HashMap<char, Vec<u64>> = std::collections::HashMap::new();
        for (i, p) in part.iter().enumerate().filter(|(_, p)| **p != '_') {
            masks.entry(*p).or_insert_with(|| any.clone())[i / 64] |= 1 << (i % 64);
        }
        Part {
            len: part.len(),
            any,
            masks,
        }
    }

    /// Where the part first lies whole in `text`: Shift-And over 64-bit
    /// words, one step per character of `text`.
    fn leftmost(&self, text: &[char]) -> Option<usize> {
        let words = self.any.len();
        let top = (self.len - 1) % 64;
        let mut state = vec![0u64; words];
        for (i, c) in text.iter().enumerate() {
            let m = self.masks.get(c).unwrap_or(&self.any);
            // state = ((state << 1) | 1) & m, across the words.
            let mut carry = 1u64;
            for (word, m) in state.iter_mut().zip(m) {
                let next = (*word << 1) | carry;
                carry = *word >> 63;
                *word = next & m;
            }
            if (state[words - 1] >> top) & 1 == 1 {
                return Some(i + 1 - self.len);
            }
        }
        None
    }
}

impl Like {
    /// `pattern` made ready (`fold`: ASCII case folded, as `ILIKE`).
    pub fn new(pattern: &str, fold: bool) -> Self {
        let norm = |c: char| if fold { c.to_ascii_lowercase() } else { c };
        let mut parts: Vec<Vec<char>> = pattern
            .split('%')
            .map(|part| part.chars().map(norm).collect())
            .collect();
        let first = parts.remove(0);
        let last = parts.pop();
        Like {
            fold,
            first,
            last,
            middle: parts
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| Part::new(p))
                .collect(),
        }
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let t: Vec<char> = if self.fold {
            text.chars().map(|c| c.to_ascii_lowercase()).collect()
        } else {
            text.chars().collect()
        };
        let fits = |part: &[char], at: usize| {
            at + part.len() <= t.len()
                && part.iter().zip(&t[at..]).all(|(p, c)| *p == '_' || p == c)
        };
        let first = &self.first;
        let Some(last) = &self.last else {
            // No `%`: the whole text, character for character.
            return t.len() == first.len() && fits(first, 0);
        };
        if first.len() + last.len() > t.len()
            || !fits(first, 0)
            || !fits(last, t.len() - last.len())
        {
            return false;
        }
        let end = t.len() - last.len();
        let mut at = first.len();
        for part in &self.middle {
            match part.leftmost(&t[at..end]) {
                Some(found) => at += found + part.len,
                None => return false,
            }
        }
        true
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        })
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, q: char, s: &str) -> fmt::Result {
    write!(f, "{q}")?;
    for c in s.chars() {
        if c == q {
            write!(f, "{q}")?;
        }
        write!(f, "{c}")?;
    }
    write!(f, "{q}")
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, key) = match self {
            Field::Param(k) => ("params", k),
            Field::Metric(k) => ("metrics", k),
            Field::Tag(k) => ("tags", k),
            Field::Status => return f.write_str("status"),
            Field::Format => return f.write_str("format"),
            Field::Experiment => return f.write_str("experiment"),
            Field::ExperimentName => return f.write_str("experiment_name"),
            Field::Name => return f.write_str("name"),
            Field::Created => return f.write_str("created"),
        };
        write!(f, "{prefix}.")?;
        if !key.is_empty() && key.chars().all(is_key_char) {
            f.write_str(key)
        } else {
            write_quoted(f, '`', key)
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Number(n) => write!(f, "{n:?}"),
            Literal::Text(s) => write_quoted(f, '\'', s),
        }
    }
}

impl fmt::Display for Filter {
    /// An expression that parses back into the same filter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined = |f: &mut fmt::Formatter<'_>, items: &[Filter], sep: &str, and: bool| {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                let paren =
                    matches!(item, Filter::Or(_)) || (and && matches!(item, Filter::And(_)));
                if paren {
                    write!(f, "({item})")?;
                } else {
                    write!(f, "{item}")?;
                }
            }
            Ok(())
        };
        match self {
            Filter::Compare(field, op, lit) => write!(f, "{field} {op} {lit}"),
            Filter::Like {
                field,
                pattern,
                fold,
                ..
            } => {
                write!(f, "{field} {} ", if *fold { "ILIKE" } else { "LIKE" })?;
                write_quoted(f, '\'', pattern)
            }
            Filter::In(field, items) => {
                write!(f, "{field} IN (")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(")")
            }
            Filter::Not(inner) => match **inner {
                Filter::And(_) | Filter::Or(_) => write!(f, "not ({inner})"),
                _ => write!(f, "not {inner}"),
            },
            Filter::And(items) => joined(f, items, " and ", true),
            Filter::Or(items) => joined(f, items, " or ", false),
        }
    }
}

/// The fuzz oracle: parses `bytes` (as UTF-8, lossily) and, when it
/// parses, evaluates it on a fixed summary and checks that its display
/// parses back into it. Panics only on a bug.
pub fn fuzz_check(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(filter) = Filter::parse(&text) {
        let run = RunSummary::sample();
        let _ = filter.matches(&run);
        let shown = filter.to_string();
        if shown.len() <= MAX_LEN {
            match Filter::parse(&shown) {
                Ok(again) => assert_eq!(again, filter, "{shown}"),
                Err(e) => panic!("{shown:?} does not parse back: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(k: &str) -> Field {
        Field::Param(k.to_owned())
    }
    fn t(s: &str) -> Literal {
        Literal::Text(s.to_owned())
    }
    fn n(x: f64) -> Literal {
        Literal::Number(x)
    }

    /// Expressions and the AST they parse into.
    #[test]
    fn valid_expressions_parse_into_their_ast() {
        let cmp = |f: Field, o: Op, l: Literal| Filter::Compare(f, o, l);
        let cases: Vec<(&str, Filter)> = vec![
            ("params.lr = 0.1", cmp(p("lr"), Op::Eq, n(0.1))),
            ("params.lr != 1", cmp(p("lr"), Op::Ne, n(1.0))),
            ("params.lr<1", cmp(p("lr"), Op::Lt, n(1.0))),
            ("params.lr <= -2.5e3", cmp(p("lr"), Op::Le, n(-2500.0))),
            ("params.lr > +.5", cmp(p("lr"), Op::Gt, n(0.5))),
            ("params.lr >= 5.", cmp(p("lr"), Op::Ge, n(5.0))),
            ("params.lr = 1E-2", cmp(p("lr"), Op::Eq, n(0.01))),
            (
                "params.`model.lr` = 'x'",
                cmp(p("model.lr"), Op::Eq, t("x")),
            ),
            ("params.`a``b` = 'x'", cmp(p("a`b"), Op::Eq, t("x"))),
            ("params.a-b/c = 'x'", cmp(p("a-b/c"), Op::Eq, t("x"))),
            (
                "metrics.loss < 1",
                cmp(Field::Metric("loss".into()), Op::Lt, n(1.0)),
            ),
            (
                "tags.team = \"vision\"",
                cmp(Field::Tag("team".into()), Op::Eq, t("vision")),
            ),
            ("status = 'it''s'", cmp(Field::Status, Op::Eq, t("it's"))),
            (
                "status = \"say \"\"hi\"\"\"",
                cmp(Field::Status, Op::Eq, t("say \"hi\"")),
            ),
            ("format = 'lab'", cmp(Field::Format, Op::Eq, t("lab"))),
            ("experiment = 'e'", cmp(Field::Experiment, Op::Eq, t("e"))),
            (
                "experiment_name = 'e'",
                cmp(Field::ExperimentName, Op::Eq, t("e")),
            ),
            ("name = ''", cmp(Field::Name, Op::Eq, t(""))),
            (
                "created >= '2026-01-01T00:00:00Z'",
                cmp(Field::Created, Op::Ge, t("2026-01-01T00:00:00Z")),
            ),
            (
                "name LIKE 'a%'",
                Filter::like(Field::Name, "a%".into(), false),
            ),
            (
                "name ilike '_b'",
                Filter::like(Field::Name, "_b".into(), true),
            ),
            (
                "status IN ('a', 'b')",
                Filter::In(Field::Status, vec![t("a"), t("b")]),
            ),
            (
                "params.x in (1,2 , 'z')",
                Filter::In(p("x"), vec![n(1.0), n(2.0), t("z")]),
            ),
            (
                "not status = 'a'",
                Filter::Not(Box::new(cmp(Field::Status, Op::Eq, t("a")))),
            ),
            (
                "status = 'a' AND format = 'b'",
                Filter::And(vec![
                    cmp(Field::Status, Op::Eq, t("a")),
                    cmp(Field::Format, Op::Eq, t("b")),
                ]),
            ),
            (
                "status = 'a' Or format = 'b' and name = 'c'",
                Filter::Or(vec![
                    cmp(Field::Status, Op::Eq, t("a")),
                    Filter::And(vec![
                        cmp(Field::Format, Op::Eq, t("b")),
                        cmp(Field::Name, Op::Eq, t("c")),
                    ]),
                ]),
            ),
            (
                "(status = 'a' or format = 'b') and name = 'c'",
                Filter::And(vec![
                    Filter::Or(vec![
                        cmp(Field::Status, Op::Eq, t("a")),
                        cmp(Field::Format, Op::Eq, t("b")),
                    ]),
                    cmp(Field::Name, Op::Eq, t("c")),
                ]),
            ),
            ("((status = 'a'))", cmp(Field::Status, Op::Eq, t("a"))),
            (
                "NOT (status = 'a' or status = 'b')",
                Filter::Not(Box::new(Filter::Or(vec![
                    cmp(Field::Status, Op::Eq, t("a")),
                    cmp(Field::Status, Op::Eq, t("b")),
                ]))),
            ),
            ("  status='a'  ", cmp(Field::Status, Op::Eq, t("a"))),
        ];
        for (expr, expected) in cases {
            assert_eq!(Filter::parse(expr), Ok(expected.clone()), "{expr}");
            assert_eq!(Filter::parse(&expected.to_string()), Ok(expected), "{expr}");
        }
    }

    /// Expressions and whether the sample run passes.
    #[test]
    fn filters_match_the_sample_run() {
        let run = RunSummary::sample();
        let cases = [
            ("params.lr = 0.1", true),
            ("params.lr > 0.05 and params.lr < 0.2", true),
            ("params.lr = '0.1'", true),
            ("params.`model.lr` < 0.1", true),
            ("params.`model.lr` = '0.01'", true),
            ("params.opt = 'adam'", true),
            ("params.opt > 'ab'", true),
            ("params.opt = 1", false),
            ("params.opt != 1", false),
            ("params.missing = 1", false),
            ("not params.missing = 1", true),
            ("params.missing != 1", false),
            ("metrics.loss < 1", true),
            ("metrics.loss >= 0.5", true),
            ("metrics.acc > 0", false),
            ("metrics.acc <= 0", false),
            ("tags.team = 'vision'", true),
            ("tags.baseline = ''", true),
            ("tags.nope = ''", false),
            ("status = 'finished'", true),
            ("status IN ('running', 'finished')", true),
            ("status IN ('running')", false),
            ("params.lr IN (0.2, 0.1)", true),
            ("format = 'lab'", true),
            ("name = 'Sample'", true),
            ("name LIKE 'Sam%'", true),
            ("name LIKE 'sam%'", false),
            ("name ILIKE 'sam%'", true),
            ("name LIKE 'S_mple'", true),
            ("name LIKE '%'", true),
            ("name LIKE '_'", false),
            ("params.lr LIKE '0.%'", true),
            ("created > '2026-01-01T00:00:00Z'", true),
            ("created < '2026-01-02T03:04:05Z'", false),
            ("created = 2026", false),
            ("created >= '2026'", true),
            ("created < '2026-01-03'", true),
            ("created < '2026-01-02'", false),
            ("created IN ('2026-01-02T03:04:05Z', '2025')", true),
            ("experiment = 'x'", false),
            ("not experiment_name = 'x'", true),
            ("experiment = 'lab:vision'", true),
            ("experiment_name ILIKE 'VIS%'", true),
            ("status = 'x' or params.opt = \"adam\"", true),
            ("not (status = 'x' or params.opt = 'adam')", false),
        ];
        for (expr, expected) in cases {
            let filter = Filter::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(filter.matches(&run), expected, "{expr}");
        }
    }

    /// Refused expressions and the character where they go wrong.
    #[test]
    fn invalid_expressions_say_where() {
        let deep = format!("{}status = 'a'{}", "(".repeat(65), ")".repeat(65));
        let many = vec!["name=''"; 257].join(" or ");
        let list = format!("status IN ({})", vec!["1"; 1025].join(","));
        let long = format!("name = '{}'", "x".repeat(4096));
        let wide = format!("name LIKE 'x' or name LIKE '{}'", "%".repeat(257));
        let cases: Vec<(&str, usize)> = vec![
            ("", 0),
            ("   ", 3),
            ("status", 6),
            ("status =", 8),
            ("status = ", 9),
            ("status == 'a'", 8),
            ("bogus = 1", 0),
            ("created > '2020-02-30T25:61:61+99:99'", 10),
            ("created > '2021-02-29'", 10),
            ("created < '2026-13'", 10),
            ("created IN ('2026', 'soon')", 20),
            ("created > '2026-01-02T24:00:00Z'", 10),
            (&wide, 27),
            ("params = 1", 6),
            ("params. = 1", 7),
            ("params.`` = 1", 7),
            ("params.`a = 1", 7),
            ("status = 'a", 9),
            ("status = 1x", 9),
            ("status = 1e", 9),
            ("status = .", 9),
            ("status = 1e999", 9),
            ("status LIKE 1", 12),
            ("status IN 1", 10),
            ("status IN (1", 12),
            ("status IN ()", 11),
            ("status = 'a' and", 16),
            ("status = 'a' xor", 13),
            ("(status = 'a'", 13),
            ("status = 'a')", 12),
            ("not", 3),
            ("é = 1", 0),
            ("name = 'é' x", 11),
            (&deep, 64),
            (&many, 256 * 11),
            (&list, 11 + 1024 * 2),
            (&long, 0),
        ];
        let mut wrong = Vec::new();
        for (expr, position) in cases {
            let got = Filter::parse(expr);
            if got.as_ref().map_err(|e| e.position) != Err(position) {
                wrong.push(format!("{:.40}: {got:.60?}", expr));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// The fuzz target's seeds parse, and hold for the oracle.
    #[test]
    fn the_fuzz_seeds_parse() {
        for seed in [
            include_str!("../fuzz/seeds/filter/seed-1"),
            include_str!("../fuzz/seeds/filter/seed-2"),
            include_str!("../fuzz/seeds/filter/seed-3"),
        ] {
            assert!(Filter::parse(seed).is_ok(), "{seed}");
            fuzz_check(seed.as_bytes());
        }
    }

    #[test]
    fn like_has_no_blow_up() {
        let text = "a".repeat(4000);
        let pattern = format!("{}b", "%a".repeat(1000));
        assert!(!like(&text, &pattern, false));
        // The attack's case: one long part that almost matches everywhere.
        let part = format!("%{}b%", "a".repeat(254));
        assert!(!like(&text, &part, false));
        let near = format!("{}b{}", "a".repeat(3000), "a".repeat(999));
        assert!(like(&near, &part, false));
        assert!(like("abc", "a%c", false));
        assert!(like("", "%", false));
        assert!(!like("", "_", false));
        assert!(like("xAy", "%a%", true));
    }

    /// `LIKE` by dynamic programming over text × pattern: the oracle.
    fn like_oracle(text: &str, pattern: &str, fold: bool) -> bool {
        let norm = |c: char| if fold { c.to_ascii_lowercase() } else { c };
        let t: Vec<char> = text.chars().map(norm).collect();
        let p: Vec<char> = pattern.chars().map(norm).collect();
        // m[i][j]: t[..i] matches p[..j].
        let mut m = vec![vec![false; p.len() + 1]; t.len() + 1];
        m[0][0] = true;
        for j in 1..=p.len() {
            m[0][j] = m[0][j - 1] && p[j - 1] == '%';
        }
        for i in 1..=t.len() {
            for j in 1..=p.len() {
                m[i][j] = match p[j - 1] {
                    '%' => m[i][j - 1] || m[i - 1][j],
                    '_' => m[i - 1][j - 1],
                    c => m[i - 1][j - 1] && c == t[i - 1],
                };
            }
        }
        m[t.len()][p.len()]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The segment matcher agrees with the oracle, parts longer than a
        /// 64-bit word included.
        #[test]
        fn like_agrees_with_its_oracle(
            text in "[abA]{0,140}",
            pattern in "[abA_%]{0,12}",
            long in "[ab_]{60,70}",
            fold in any::<bool>(),
        ) {
            prop_assert_eq!(like(&text, &pattern, fold), like_oracle(&text, &pattern, fold));
            let wide = format!("%{long}%");
            prop_assert_eq!(like(&text, &wide, fold), like_oracle(&text, &wide, fold));
            let inside = format!("{text}{}{text}", long.replace('_', "b"));
            prop_assert_eq!(like(&inside, &wide, fold), like_oracle(&inside, &wide, fold));
        }
    }

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("status".to_owned()),
            Just("name".to_owned()),
            Just("format".to_owned()),
            Just("experiment".to_owned()),
            "(params|metrics|tags)\\.[a-z_/-]{1,5}",
            "params\\.`([a-z. ]|``){1,5}`",
        ]
    }

    fn literal() -> impl Strategy<Value = String> {
        prop_oneof![
            "-?[0-9]{1,4}(\\.[0-9]{0,3})?([eE][+-]?[0-9]{1,2})?",
            "'([a-z%_ ]|'')*'",
            "\"([a-z%_ ]|\"\")*\"",
        ]
    }

    fn predicate() -> impl Strategy<Value = String> {
        (
            field(),
            prop_oneof!["=", "!=", "<", "<=", ">", ">="],
            literal(),
        )
            .prop_map(|(f, o, l)| format!("{f} {o} {l}"))
    }

    /// A time `created` takes: whole, or a start of one.
    fn time() -> impl Strategy<Value = String> {
        prop_oneof![
            "'20[0-9]{2}'",
            "'20[0-9]{2}-(0[1-9]|1[0-2])'",
            "'20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])'",
            "'20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z'",
            "-?[0-9]{1,4}",
        ]
    }

    fn expr() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            predicate(),
            (prop_oneof!["=", "!=", "<", "<=", ">", ">="], time())
                .prop_map(|(o, t)| format!("created {o} {t}")),
            proptest::collection::vec(time(), 1..4)
                .prop_map(|t| format!("created IN ({})", t.join(", "))),
            (field(), prop_oneof!["LIKE", "ilike"], "'[a-z%_]*'")
                .prop_map(|(f, k, s)| format!("{f} {k} {s}")),
            (field(), proptest::collection::vec(literal(), 1..4))
                .prop_map(|(f, l)| format!("{f} IN ({})", l.join(", "))),
        ];
        leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                (inner.clone(), prop_oneof![" and ", " OR "], inner.clone())
                    .prop_map(|(a, k, b)| format!("{a}{k}{b}")),
                inner.clone().prop_map(|a| format!("not {a}")),
                inner.prop_map(|a| format!("({a})")),
            ]
        })
    }

    proptest! {
        #[test]
        fn grammar_expressions_parse_and_round_trip(e in expr()) {
            let filter = Filter::parse(&e);
            prop_assert!(filter.is_ok(), "{e}: {filter:?}");
            fuzz_check(e.as_bytes());
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            fuzz_check(&bytes);
        }

        #[test]
        fn random_text_from_the_alphabet_never_panics(s in "[a-z.`'\"()=<>!%_ 0-9,eE+-]{0,40}") {
            fuzz_check(s.as_bytes());
        }
    }
}
