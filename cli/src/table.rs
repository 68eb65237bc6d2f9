//! The CLI's tables (comfy-table, borderless: columns padded to the
//! widest cell, two spaces apart), and the cleaning of the text they show
//! (event headers and bodies come from the internet: a terminal escape
//! sequence in one must not reach the operator's terminal).

use comfy_table::presets::NOTHING;

/// A table: a header row and rows of cells, each cleaned to one line.
pub struct Table {
    inner: comfy_table::Table,
    rows: usize,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        let mut inner = comfy_table::Table::new();
        inner.load_preset(NOTHING).set_header(header.to_vec());
        // No left padding, two spaces to the next column; the trailing
        // spaces of the last one are trimmed when rendered.
        for column in inner.column_iter_mut() {
            column.set_padding((0, 2));
        }
        Self { inner, rows: 0 }
    }

    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.inner.add_row(
            cells
                .into_iter()
                .map(|c| clean_line(c.as_ref()))
                .collect::<Vec<_>>(),
        );
        self.rows += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in self.inner.lines() {
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
    fn wide_characters_count_by_their_width_on_screen() {
        let mut t = Table::new(&["NAME", "N"]);
        t.row(["日本", "1"]);
        t.row(["ab", "2"]);
        assert_eq!(t.render(), "NAME  N\n日本  1\nab    2\n");
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
