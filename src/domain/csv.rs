//! RFC 4180 fields for the files finance opens in spreadsheets (bank files, exports).

/// One free-text field: a leading `=`, `+`, `-`, `@`, tab or CR is prefixed with `'` so a
/// spreadsheet never runs it as a formula; then quoted when it holds a comma, a quote or a line
/// break. Amount columns are written as numbers and never pass through here.
pub fn text(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// What `bom=true` puts first, so Excel reads the file as UTF-8.
pub const BOM: &str = "\u{feff}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_a_spreadsheet_would_run_is_neutralized_and_quoted() {
        assert_eq!(text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(text("-1"), "'-1");
        assert_eq!(text("\tx"), "'\tx");
        assert_eq!(text("Müller, Söhne"), "\"Müller, Söhne\"");
        assert_eq!(text("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(text("plain"), "plain");
    }
}
