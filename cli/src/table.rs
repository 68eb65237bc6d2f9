//! Aligned text columns for the CLI's tables, and the cleaning of the
//! text they show (event headers and bodies come from the internet: a
//! terminal escape sequence in one must not reach the operator's terminal).

use std::fmt::Write as _;

/// A table: a header row and rows of cells, columns padded to the widest
/// cell, two spaces apart.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Cells are cleaned to one line each.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.rows
            .push(cells.into_iter().map(|c| clean_line(c.as_ref())).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                if i + 1 == columns {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<width$}  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// One line: every control character (newlines included) escaped.
pub fn clean_line(s: &str) -> String {
    escape_controls(s, false)
}

/// Multi-line text (a body): newlines and tabs kept, other control
/// characters (ESC and the like) escaped.
pub fn clean_text(s: &str) -> String {
    escape_controls(s, true)
}

fn escape_controls(s: &str, keep_lines: bool) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' | '\t' if keep_lines => out.push(c),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_cells_stay_on_one_line() {
        let mut t = Table::new(&["ID", "STATUS", "NOTE"]);
        t.row(["a", "delivered", "x"]);
        t.row(["longer-id", "ok", "two\nlines"]);
        assert_eq!(
            t.render(),
            "ID         STATUS     NOTE\n\
             a          delivered  x\n\
             longer-id  ok         two\\nlines\n"
        );
    }

    #[test]
    fn escape_sequences_never_reach_the_terminal() {
        assert_eq!(clean_line("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(
            clean_text("{\n\t\"a\": \"\u{7}\"\n}"),
            "{\n\t\"a\": \"\\u{7}\"\n}"
        );
        assert_eq!(clean_line("plain"), "plain");
    }
}
