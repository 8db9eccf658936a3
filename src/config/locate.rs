//! Where things are in the config file: byte offsets to line numbers, and
//! to the key path (`accounts.work.tls`) at that offset, so every error can
//! say `config.toml:12: ... "tls" in [accounts.work]`.

use std::ops::Range;
use toml_edit::{ImDocument, Item, TableLike};

/// The config text, with its parsed layout when it is valid TOML.
pub(super) struct Locator<'a> {
    text: &'a str,
    doc: Option<ImDocument<&'a str>>,
}

impl<'a> Locator<'a> {
    /// Indexes `text`.
    pub fn new(text: &'a str) -> Locator<'a> {
        Locator {
            text,
            doc: ImDocument::parse(text).ok(),
        }
    }

    /// Whether the text is valid TOML.
    pub fn is_toml(&self) -> bool {
        self.doc.is_some()
    }

    /// The 1-based line of byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The key path of the innermost key or value at `offset`: `["accounts",
    /// "work", "tls"]`; `["accounts", "work"]` for the table itself; empty
    /// at the top level.
    pub fn path_at(&self, offset: usize) -> Vec<String> {
        let mut path = Vec::new();
        if let Some(doc) = &self.doc {
            walk(doc.as_table(), offset, &mut path);
        }
        path
    }

    /// The span of the key at `path` (for a table, of its header when it
    /// has one), else of the nearest enclosing key that has one.
    pub fn span_of(&self, path: &[&str]) -> Option<Range<usize>> {
        let doc = self.doc.as_ref()?;
        let mut table: &dyn TableLike = doc.as_table();
        let mut best = None;
        for name in path {
            let (key, item) = table.get_key_value(name)?;
            best = key.span().or_else(|| item.span()).or(best);
            if let Item::Table(t) = item {
                best = t.span().or(best);
            }
            match item.as_table_like() {
                Some(inner) => table = inner,
                None => break,
            }
        }
        best
    }

    /// The 1-based line of the key at `path` (see [`Locator::span_of`]); 1
    /// when it cannot be found.
    pub fn line_of(&self, path: &[&str]) -> usize {
        self.span_of(path).map_or(1, |span| self.line(span.start))
    }

    /// The keys of the table at `path`, in file order.
    pub fn keys_of(&self, path: &[&str]) -> Vec<String> {
        let Some(doc) = &self.doc else {
            return Vec::new();
        };
        let mut table: &dyn TableLike = doc.as_table();
        for name in path {
            match table.get(name).and_then(Item::as_table_like) {
                Some(inner) => table = inner,
                None => return Vec::new(),
            }
        }
        table.iter().map(|(key, _)| key.to_string()).collect()
    }
}

fn contains(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|span| span.contains(&offset) || span.start == offset)
}

/// Descends into `table` towards `offset`, pushing key names; true when
/// something at `offset` was found.
fn walk(table: &dyn TableLike, offset: usize, path: &mut Vec<String>) -> bool {
    for (name, item) in table.iter() {
        let key_span = table.get_key_value(name).and_then(|(key, _)| key.span());
        path.push(name.to_string());
        if contains(key_span, offset) {
            return true;
        }
        let here = contains(item.span(), offset);
        if let Some(inner) = item.as_table_like() {
            // A `[table]`'s span is its header; its keys lie below it.
            if walk(inner, offset, path) || here {
                return true;
            }
        } else if here {
            return true;
        }
        path.pop();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "state_dir = \"/s\"\n\n[accounts.work]\nhost = \"h\"\ntls = \"x\"\n\n[accounts.home]\nfolder_map = { a = 1 }\n";

    fn offset_of(needle: &str) -> usize {
        TEXT.find(needle).expect("in text")
    }

    #[test]
    fn finds_the_key_path_at_an_offset() {
        let at = Locator::new(TEXT);
        assert_eq!(at.path_at(offset_of("state_dir")), ["state_dir"]);
        assert_eq!(at.path_at(offset_of("\"x\"")), ["accounts", "work", "tls"]);
        assert_eq!(at.path_at(offset_of("host")), ["accounts", "work", "host"]);
        assert_eq!(
            at.path_at(offset_of("[accounts.home]")),
            ["accounts", "home"]
        );
        assert_eq!(
            at.path_at(offset_of("1 }")),
            ["accounts", "home", "folder_map", "a"]
        );
    }

    #[test]
    fn finds_lines_of_keys() {
        let at = Locator::new(TEXT);
        assert_eq!(at.line_of(&["state_dir"]), 1);
        assert_eq!(at.line_of(&["accounts", "work"]), 3);
        assert_eq!(at.line_of(&["accounts", "work", "tls"]), 5);
        assert_eq!(at.line_of(&["accounts", "home"]), 7);
        assert_eq!(at.keys_of(&["accounts"]), ["work", "home"]);
    }
}
