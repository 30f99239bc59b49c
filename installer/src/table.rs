//! Plain-text tables for terminal output (no colours, so logs and golden files stay readable).

/// Left-aligned columns separated by two spaces; trailing spaces trimmed.
pub fn render<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut width = [0usize; N];
    for (i, h) in header.iter().enumerate() {
        width[i] = h.chars().count();
    }
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i + 1 < N {
                s.push_str(&" ".repeat(width[i] - c.chars().count() + 2));
            }
        }
        format!("{}\n", s.trim_end())
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Indents every line by two spaces (tables inside a section).
pub fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}
