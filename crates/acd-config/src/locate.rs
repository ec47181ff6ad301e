//! Finds the line of a key path (`flows.sales.nodes.queue.queue`) in the
//! original TOML text, so errors found after deserialising still point at a line.

use toml_edit::{Document, Item, Table, Value};

use crate::ConfigError;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, Copy)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// 1-based line of byte offset `at`.
pub fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(at)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Dotted rendering of a path, `agents[1].skills.sales`.
pub fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

pub fn error(text: &str, name: &str, path: &[Seg], message: String) -> ConfigError {
    ConfigError {
        file: name.to_string(),
        line: find_line(text, path),
        key: render(path),
        message,
    }
}

/// Line of the deepest part of `path` present in the text.
pub fn find_line(text: &str, path: &[Seg]) -> Option<usize> {
    let doc = Document::parse(text).ok()?;
    let mut at = Place::Item(doc.as_item());
    let mut best = None;
    for seg in path {
        let (next, span) = match step(at, seg) {
            Some(found) => found,
            None => break,
        };
        if let Some(s) = span {
            best = Some(line_of(text, s.start));
        }
        at = next;
    }
    best
}

/// Byte range of the value at the end of `path`, when the whole path is present.
pub fn value_span(text: &str, path: &[Seg]) -> Option<std::ops::Range<usize>> {
    let doc = Document::parse(text).ok()?;
    let mut at = Place::Item(doc.as_item());
    for seg in path {
        at = step(at, seg)?.0;
    }
    match at {
        Place::Item(item) => item.span(),
        Place::Value(v) => v.span(),
        Place::Table(t) => t.span(),
    }
}

/// A position in the document while walking a path.
#[derive(Clone, Copy)]
enum Place<'d> {
    Item(&'d Item),
    Table(&'d Table),
    /// An element of an inline array (`relax = [{ … }, { … }]`).
    Value(&'d Value),
}

type Span = Option<std::ops::Range<usize>>;

fn step<'d>(at: Place<'d>, seg: &Seg) -> Option<(Place<'d>, Span)> {
    match (seg, at) {
        (Seg::Key(k), Place::Table(t) | Place::Item(Item::Table(t))) => {
            let (key, next) = t.get_key_value(k)?;
            Some((Place::Item(next), key.span().or_else(|| next.span())))
        }
        (Seg::Key(k), Place::Item(Item::Value(Value::InlineTable(t))))
        | (Seg::Key(k), Place::Value(Value::InlineTable(t))) => {
            let (key, next) = t.get_key_value(k)?;
            Some((Place::Item(next), key.span().or_else(|| next.span())))
        }
        (Seg::Index(i), Place::Item(Item::Value(Value::Array(a))))
        | (Seg::Index(i), Place::Value(Value::Array(a))) => {
            let v = a.get(*i)?;
            Some((Place::Value(v), v.span()))
        }
        (Seg::Index(i), Place::Item(Item::ArrayOfTables(a))) => {
            let t = a.get(*i)?;
            Some((Place::Table(t), t.span()))
        }
        _ => None,
    }
}

/// Dotted key whose key or value covers byte `at`, for errors that serde
/// reports only by position (a value of the wrong type, say).
pub fn key_at(text: &str, at: usize) -> Option<String> {
    let doc = Document::parse(text).ok()?;
    let segs = in_table(doc.as_table(), at)?;
    let mut out = String::new();
    for s in segs.iter().rev() {
        if !s.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(s);
    }
    Some(out)
}

fn covers(span: Option<std::ops::Range<usize>>, at: usize) -> bool {
    span.is_some_and(|s| s.contains(&at))
}

/// Path segments, innermost first.
fn in_table(t: &Table, at: usize) -> Option<Vec<String>> {
    t.iter().find_map(|(k, item)| {
        let key_span = t.key(k).and_then(|key| key.span());
        in_item(item, at, k, key_span)
    })
}

fn in_item(
    item: &Item,
    at: usize,
    name: &str,
    key_span: Option<std::ops::Range<usize>>,
) -> Option<Vec<String>> {
    let deeper = match item {
        Item::Table(t) => in_table(t, at),
        Item::ArrayOfTables(a) => a.iter().enumerate().find_map(|(i, t)| {
            let mut segs = in_table(t, at)?;
            segs.push(format!("[{i}]"));
            Some(segs)
        }),
        Item::Value(Value::InlineTable(t)) => t.iter().find_map(|(k, v)| {
            let ks = t.key(k).and_then(|key| key.span());
            in_item(&Item::Value(v.clone()), at, k, ks)
        }),
        _ => None,
    };
    match deeper {
        Some(mut segs) => {
            segs.push(name.to_string());
            Some(segs)
        }
        None if covers(key_span, at) || covers(item.span(), at) => Some(vec![name.to_string()]),
        None => None,
    }
}
