//! TOML source files (profiles, specs) and errors that point into them: `file:line:column`,
//! the field's dotted path, what is wrong and what to do.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{Item, Value};

/// A TOML file read into memory, kept with its text so any error can be located.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

/// One located problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the field (`network.cluster-bridge.vswitch-vlan`), empty for syntax errors.
    pub field: String,
    pub message: String,
    /// "error" or "warning".
    pub severity: &'static str,
    /// What the operator should do about it.
    pub help: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // about the file as a whole (it could not be read)
            write!(f, "{}: {}: ", self.file, self.severity)?;
        } else {
            write!(f, "{}:{}:{}: {}: ", self.file, self.line, self.column, self.severity)?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.message)?;
        if !self.help.is_empty() {
            write!(f, "\n  help: {}", self.help)?;
        }
        Ok(())
    }
}

/// Every problem found in one file, in file order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct SourceError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl SourceFile {
    pub fn read(path: &Path) -> Result<SourceFile, SourceError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(SourceFile { path: path.to_path_buf(), text }),
            Err(e) => Err(SourceError {
                diagnostics: vec![Diagnostic {
                    file: path.display().to_string(),
                    line: 0,
                    column: 0,
                    field: String::new(),
                    severity: "error",
                    message: format!("cannot read file: {e}"),
                    help: "check the path".into(),
                }],
            }),
        }
    }

    pub fn from_text(path: impl Into<PathBuf>, text: impl Into<String>) -> SourceFile {
        SourceFile { path: path.into(), text: text.into() }
    }

    /// Deserializes the file into a raw (unvalidated) shape. Syntax errors, unknown fields and
    /// wrong types come back located, with the field path.
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, SourceError> {
        toml::from_str(&self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let field = self.path_at(span.start);
            let message = e.message().trim().to_string();
            let help = if message.starts_with("unknown field") {
                "remove the field or fix its spelling (fields are kebab-case)".to_string()
            } else if message.starts_with("missing field") {
                "add the field; the shipped profiles show every field".to_string()
            } else if message.starts_with("invalid type") || message.starts_with("unknown variant") {
                "use a value of the kind the message expects".to_string()
            } else {
                String::new()
            };
            SourceError { diagnostics: vec![self.diagnostic("error", span.start, field, message, help)] }
        })
    }

    /// Locates a list of (field path, message, help) found by validation.
    pub fn errors(&self, problems: Vec<(String, String, String)>) -> SourceError {
        SourceError { diagnostics: self.locate("error", problems) }
    }

    /// Locates (field path, message, help) triples as diagnostics of one severity, in file order.
    pub fn locate(&self, severity: &'static str, problems: Vec<(String, String, String)>) -> Vec<Diagnostic> {
        if problems.is_empty() {
            return Vec::new();
        }
        let doc = toml_edit::Document::parse(self.text.as_str()).ok();
        let mut diagnostics: Vec<Diagnostic> = problems
            .into_iter()
            .map(|(field, message, help)| {
                let offset = doc.as_ref().and_then(|d| span_in(Node::Item(d.as_item()), &field)).map(|s| s.start).unwrap_or(0);
                self.diagnostic(severity, offset, field, message, help)
            })
            .collect();
        diagnostics.sort_by_key(|d| (d.line, d.column));
        diagnostics
    }

    fn diagnostic(&self, severity: &'static str, offset: usize, field: String, message: String, help: String) -> Diagnostic {
        let (line, column) = self.line_col(offset);
        Diagnostic { file: self.path.display().to_string(), line, column, field, message, severity, help }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        (line, before[line_start..].chars().count() + 1)
    }

    /// Byte span of the value at a dotted path like `cluster.nodes[1].ring0-address`; for a
    /// missing field, the span of the nearest table that exists.
    pub fn span_of(&self, path: &str) -> Option<Range<usize>> {
        let doc = toml_edit::Document::parse(self.text.as_str()).ok()?;
        span_in(Node::Item(doc.as_item()), path)
    }

    /// Dotted path of the deepest field whose key or value covers `offset`.
    pub fn path_at(&self, offset: usize) -> String {
        let Ok(doc) = toml_edit::Document::parse(self.text.as_str()) else { return String::new() };
        let mut path = String::new();
        walk(Node::Item(doc.as_item()), offset, &mut path);
        path
    }
}

/// A position in a parsed document, borrowed: `[table]`s and values are `Item`s, entries of
/// `[[arrays]]` are `Table`s, inline tables and array elements are `Value`s.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a toml_edit::Table),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn value(self) -> Option<&'a Value> {
        match self {
            Node::Item(Item::Value(v)) | Node::Value(v) => Some(v),
            _ => None,
        }
    }

    fn table(self) -> Option<&'a toml_edit::Table> {
        match self {
            Node::Item(Item::Table(t)) | Node::Table(t) => Some(t),
            _ => None,
        }
    }

    fn span(self) -> Option<Range<usize>> {
        match (self, self.table(), self.value()) {
            (_, Some(t), _) => t.span(),
            (_, _, Some(v)) => v.span(),
            (Node::Item(Item::ArrayOfTables(a)), _, _) => a.span(),
            _ => None,
        }
    }

    /// Children with their path segment and the span of their key (if any).
    fn children(self) -> Vec<(String, Option<Range<usize>>, Node<'a>)> {
        if let Some(t) = self.table() {
            return t.iter().map(|(k, c)| (k.to_string(), t.key(k).and_then(|k| k.span()), Node::Item(c))).collect();
        }
        match (self, self.value()) {
            (Node::Item(Item::ArrayOfTables(a)), _) => a.iter().enumerate().map(|(i, t)| (format!("[{i}]"), None, Node::Table(t))).collect(),
            (_, Some(Value::InlineTable(t))) => t.iter().map(|(k, v)| (k.to_string(), t.key(k).and_then(|k| k.span()), Node::Value(v))).collect(),
            (_, Some(Value::Array(a))) => a.iter().enumerate().map(|(i, v)| (format!("[{i}]"), None, Node::Value(v))).collect(),
            _ => Vec::new(),
        }
    }

    fn child(self, seg: &str) -> Option<Node<'a>> {
        self.children().into_iter().find(|(name, _, _)| name == seg).map(|(_, _, n)| n)
    }
}

/// Splits `a.b[1].c` into `a`, `b`, `[1]`, `c`.
fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once('[').map(|(k, r)| (k, Some(r))).unwrap_or((part, None));
        if !key.is_empty() {
            out.push(key.to_string());
        }
        if let Some(rest) = rest {
            out.extend(rest.split('[').map(|idx| format!("[{}]", idx.trim_end_matches(']'))));
        }
    }
    out
}

fn span_in(root: Node<'_>, path: &str) -> Option<Range<usize>> {
    let mut node = root;
    let mut best = None;
    for seg in segments(path) {
        match node.child(&seg) {
            Some(n) => {
                best = n.span().or(best);
                node = n;
            }
            None => break,
        }
    }
    best
}

fn covers(span: &Option<Range<usize>>, offset: usize) -> bool {
    span.as_ref().is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

/// Whether the key or value of `node`, or of anything inside it, covers `offset`. (A `[table]`
/// header's span covers only the header; its fields lie elsewhere.)
fn contains(node: Node<'_>, key_span: &Option<Range<usize>>, offset: usize) -> bool {
    covers(key_span, offset)
        || covers(&node.span(), offset)
        || node.children().iter().any(|(_, k, c)| contains(*c, k, offset))
}

fn walk(node: Node<'_>, offset: usize, path: &mut String) {
    for (seg, key_span, child) in node.children() {
        if contains(child, &key_span, offset) {
            if !path.is_empty() && !seg.starts_with('[') {
                path.push('.');
            }
            path.push_str(&seg);
            if !covers(&key_span, offset) {
                walk(child, offset, path);
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name = \"x\"\n[net]\nmtu = 1400\n[[net.vlans]]\nid = 10\n[[net.vlans]]\nid = 5000\nlist = [1, 2]\n";

    #[test]
    fn span_of_paths() {
        let s = SourceFile::from_text("t.toml", DOC);
        let at = |p: &str| s.line_col(s.span_of(p).unwrap().start);
        assert_eq!(at("name"), (1, 8));
        assert_eq!(at("net.mtu"), (3, 7));
        assert_eq!(at("net.vlans[1].id"), (7, 6));
        assert_eq!(at("net.vlans[1].list[1]"), (8, 12));
        // missing leaf: nearest existing parent
        assert_eq!(at("net.vlans[1].nope"), (6, 1));
    }

    #[test]
    fn path_at_offsets() {
        let s = SourceFile::from_text("t.toml", DOC);
        let off = DOC.find("5000").unwrap();
        assert_eq!(s.path_at(off), "net.vlans[1].id");
        let off = DOC.find("mtu").unwrap();
        assert_eq!(s.path_at(off), "net.mtu");
    }
}
