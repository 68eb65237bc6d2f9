//! Cutting text to a platform's limit without breaking it.
//!
//! Lengths are counted in UTF-16 code units: never fewer than the code
//! points, so a string within the limit by this count is within it whether
//! the platform counts code points (Python) or UTF-16 units (JavaScript).
//! Cuts fall on `char` boundaries, so no UTF-8 sequence is ever split, and a
//! cut string ends with an ellipsis that counts toward the limit.

use std::borrow::Cow;

/// Appended where a string was cut.
pub const ELLIPSIS: char = '…';

/// The length of `s` as the limits count it.
pub fn units(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// `s` cut to at most `max` units, ending with an ellipsis if it was cut.
pub fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    truncate_by(s, max, char::len_utf16)
}

/// [`truncate`] in place.
pub fn truncate_in_place(s: &mut String, max: usize) {
    if let Cow::Owned(cut) = truncate(s, max) {
        *s = cut;
    }
}

/// Like [`truncate`], with the cost of each char given by `cost`: for text
/// that is escaped afterwards (one `&` becomes the five units of `&amp;`), so
/// the escaped result fits and no escape sequence is cut in half.
pub fn truncate_by(s: &str, max: usize, cost: impl Fn(char) -> usize) -> Cow<'_, str> {
    let ellipsis = cost(ELLIPSIS);
    let mut total = 0usize;
    // End of the longest prefix that still leaves room for the ellipsis.
    let mut keep = 0usize;
    for (i, c) in s.char_indices() {
        let next = total + cost(c);
        if next > max {
            if max < ellipsis {
                return Cow::Borrowed("");
            }
            // A space before the ellipsis reads badly: drop it.
            let head = s[..keep].trim_end();
            let mut out = String::with_capacity(head.len() + ELLIPSIS.len_utf8());
            out.push_str(head);
            out.push(ELLIPSIS);
            return Cow::Owned(out);
        }
        if next + ellipsis <= max {
            keep = i + c.len_utf8();
        }
        total = next;
    }
    Cow::Borrowed(s)
}

/// `s` cut to at most `max` bytes of UTF-8 (ellipsis included), for limits
/// on the size of a whole payload.
pub fn truncate_bytes(s: &str, max: usize) -> Cow<'_, str> {
    truncate_by(s, max, char::len_utf8)
}

/// The first line of `s`, trimmed: a commit subject, a title.
pub fn first_line(s: &str) -> &str {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_are_borrowed_untouched() {
        assert!(matches!(truncate("hello", 5), Cow::Borrowed("hello")));
        assert!(matches!(truncate("", 0), Cow::Borrowed("")));
    }

    #[test]
    fn long_strings_end_with_an_ellipsis_within_the_limit() {
        assert_eq!(truncate("hello world", 8), "hello w…");
        assert_eq!(units(&truncate("hello world", 8)), 8);
        assert_eq!(truncate("hello world", 7), "hello…");
        assert_eq!(truncate("abcdef", 5), "abcd…");
        assert_eq!(truncate("abcdef", 1), "…");
        assert_eq!(truncate("abcdef", 0), "");
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        // é is 2 bytes, 日 3 bytes, 🦀 4 bytes and 2 UTF-16 units.
        let s = "é日🦀é日🦀é日🦀";
        for max in 0..=units(s) + 1 {
            let t = truncate(s, max);
            assert!(units(&t) <= max, "{max}: {t}");
            assert!(s.starts_with(t.trim_end_matches(ELLIPSIS)), "{max}: {t}");
        }
        // The crab needs 2 units: with 3 available only "é" and the ellipsis fit.
        assert_eq!(truncate("é🦀🦀", 3), "é…");
    }

    #[test]
    fn byte_limits_never_split_a_sequence() {
        let s = "日本語のテキスト";
        for max in 0..=s.len() + 1 {
            let t = truncate_bytes(s, max);
            assert!(t.len() <= max, "{max}: {t}");
        }
        assert_eq!(truncate_bytes(s, 9), "日本…");
    }

    #[test]
    fn custom_costs_leave_room_for_escapes() {
        let cost = |c: char| if c == '&' { 5 } else { 1 };
        // "a&b" escapes to "a&amp;b" (7 units); with 6 only "a" and "…" fit.
        assert_eq!(truncate_by("a&b", 6, cost), "a…");
        assert_eq!(truncate_by("a&b", 7, cost), "a&b");
    }

    #[test]
    fn first_line_skips_blank_lines() {
        assert_eq!(first_line("\n  Fix it  \n\nBody"), "Fix it");
        assert_eq!(first_line(""), "");
    }

    #[test]
    fn in_place() {
        let mut s = String::from("abcdef");
        truncate_in_place(&mut s, 4);
        assert_eq!(s, "abc…");
        truncate_in_place(&mut s, 10);
        assert_eq!(s, "abc…");
    }
}
