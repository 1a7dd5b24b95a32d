//! Text as pages and emails show it.

/// `text` safe inside HTML, in an element or a quoted attribute (either
/// quote).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_both_quotes_are_escaped() {
        assert_eq!(
            escape_html(r#"<a href='x' title="y">Tom & 小明</a>"#),
            "&lt;a href=&#39;x&#39; title=&quot;y&quot;&gt;Tom &amp; 小明&lt;/a&gt;"
        );
        assert_eq!(escape_html("plain 文本"), "plain 文本");
    }
}
