//! The words of a sticker pack: titles, descriptions, tags and each sticker's emoji. Text a
//! client shows beside other people's messages must not reorder or hide what surrounds it, so
//! bidi controls and zero-width characters are refused everywhere (except the joiners and
//! variation selectors inside an emoji).

use unicode_segmentation::UnicodeSegmentation;

/// Bidirectional formatting characters (Unicode TR9): they can reverse the text around them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that take no room or show as blank (Unicode's format characters, fillers and
/// variation selectors): they hide differences between two strings that look alike. Inside an
/// emoji, joiners, variation selectors and tags are part of it.
fn is_zero_width(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}'
        | '\u{206A}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Why a text was refused, as one sentence.
pub fn check_text(field: &str, text: &str, min: usize, max: usize) -> Result<(), String> {
    let chars = text.chars().count();
    if chars < min || chars > max {
        return Err(format!(
            "{field} must be {min}-{max} characters, got {chars}"
        ));
    }
    if text.trim() != text {
        return Err(format!("{field} must not begin or end with spaces"));
    }
    for grapheme in text.graphemes(true) {
        let is_emoji = emojis::get(grapheme).is_some();
        for c in grapheme.chars() {
            if is_bidi_control(c) {
                return Err(format!(
                    "{field} must not hold bidi controls (U+{:04X})",
                    c as u32
                ));
            }
            // Line breaks only in longer texts (descriptions).
            if c.is_control() && !(c == '\n' && max > 64) {
                return Err(format!(
                    "{field} must not hold control characters (U+{:04X})",
                    c as u32
                ));
            }
            // ZWJ, VS16 and tags belong inside emoji sequences, nowhere else.
            if is_zero_width(c) && !is_emoji {
                return Err(format!(
                    "{field} must not hold zero-width characters outside emoji (U+{:04X})",
                    c as u32
                ));
            }
        }
    }
    Ok(())
}

/// A sticker's emoji: 1-3 RGI emoji, written one after another (spaces between are allowed).
/// Returns them as found, so the stored form is canonical ("😀 🎉").
pub fn check_emoji(text: &str) -> Result<Vec<String>, String> {
    let found: Vec<&str> = text
        .graphemes(true)
        .filter(|g| !g.trim().is_empty())
        .collect();
    if found.is_empty() || found.len() > 3 {
        return Err(format!("a sticker has 1-3 emoji, got {}", found.len()));
    }
    for g in &found {
        if emojis::get(g).is_none() {
            return Err(format!("{g:?} is not an RGI emoji"));
        }
    }
    Ok(found.into_iter().map(str::to_owned).collect())
}

/// Tags: at most 10, each 1-32 characters of letters, digits, `-` and `_` in any script.
pub fn check_tags(tags: &[String]) -> Result<(), String> {
    if tags.len() > 10 {
        return Err(format!("at most 10 tags, got {}", tags.len()));
    }
    for t in tags {
        let n = t.chars().count();
        if n == 0
            || n > 32
            || !t
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("tag {t:?}: 1-32 letters, digits, '-' or '_'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_are_one_to_three_rgi_graphemes() {
        assert_eq!(check_emoji("😀").unwrap(), vec!["😀"]);
        assert_eq!(check_emoji("😀 🎉").unwrap().len(), 2);
        // A ZWJ family and a flag are one emoji each.
        assert_eq!(check_emoji("👨‍👩‍👧🇯🇵").unwrap().len(), 2);
        assert!(check_emoji("").is_err());
        assert!(check_emoji("😀😀😀😀").is_err());
        assert!(check_emoji("a").is_err());
        assert!(check_emoji("😀\u{200B}").is_err());
    }

    #[test]
    fn hidden_and_reordering_characters_are_refused() {
        assert!(check_text("title", "Cats", 1, 64).is_ok());
        assert!(check_text("title", "ねこ 🐈‍⬛", 1, 64).is_ok());
        assert!(check_text("title", "Ca\u{200B}ts", 1, 64).is_err());
        assert!(check_text("title", "Cats\u{202E}gpj", 1, 64).is_err());
        assert!(check_text("title", "Ca\u{200D}ts", 1, 64).is_err());
        assert!(check_text("title", "", 1, 64).is_err());
        assert!(check_text("title", &"x".repeat(65), 1, 64).is_err());
        assert!(check_text("title", " Cats", 1, 64).is_err());
        assert!(check_text("title", "Ca\u{00AD}ts", 1, 64).is_err());
        assert!(check_text("title", "Ca\u{3164}ts", 1, 64).is_err());
        assert!(check_text("title", "Cats\u{E0041}", 1, 64).is_err());
        assert!(check_text("title", "Two\nlines", 1, 64).is_err());
        assert!(check_text("description", "Two\nlines", 0, 300).is_ok());
        // A flag of England is tags inside an emoji: fine.
        assert!(check_text(
            "title",
            "Go \u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
            1,
            64
        )
        .is_ok());
    }

    #[test]
    fn tags_are_short_words() {
        assert!(check_tags(&["cats".into(), "ねこ".into()]).is_ok());
        assert!(check_tags(&["two words".into()]).is_err());
        assert!(check_tags(&vec!["a".to_string(); 11]).is_err());
    }
}
