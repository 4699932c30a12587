//! The words of a sticker pack: titles, descriptions, tags and each sticker's emoji. Text a
//! client shows beside other people's messages must not reorder or hide what surrounds it, so
//! bidi controls and zero-width characters are refused everywhere (except the joiners and
//! variation selectors inside an emoji).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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

/// A pack's texts in one locale: what a buyer whose app speaks it reads, and what search
/// finds it by.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocaleTexts {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// Per-locale texts by canonical BCP-47 tag.
pub type Locales = BTreeMap<String, LocaleTexts>;

/// Most locales a pack carries, and most keywords per locale.
pub const MAX_LOCALES: usize = 40;
pub const MAX_KEYWORDS: usize = 20;

/// A BCP-47 language tag in its canonical case (`zh-Hant-TW`, `pt-BR`, `ja`): a language
/// (2-3 letters), then optionally a script (4 letters), a region (2 letters or 3 digits) and
/// variants. Extensions and private use are refused: pack texts do not need them.
pub fn canonical_locale(tag: &str) -> Option<String> {
    if tag.is_empty() || tag.len() > 35 || !tag.is_ascii() {
        return None;
    }
    let mut parts = tag.split(['-', '_']);
    let language = parts.next()?;
    if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let mut out = language.to_ascii_lowercase();
    // 0: script may follow, 1: region may follow, 2: only variants.
    let mut stage = 0;
    for part in parts {
        let alpha = part.bytes().all(|b| b.is_ascii_alphabetic());
        let digits = part.bytes().all(|b| b.is_ascii_digit());
        out.push('-');
        if stage == 0 && part.len() == 4 && alpha {
            out.push_str(&part[..1].to_ascii_uppercase());
            out.push_str(&part[1..].to_ascii_lowercase());
            stage = 1;
        } else if stage <= 1 && ((part.len() == 2 && alpha) || (part.len() == 3 && digits)) {
            out.push_str(&part.to_ascii_uppercase());
            stage = 2;
        } else if (5..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
            || part.len() == 4
                && part.as_bytes()[0].is_ascii_digit()
                && part.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            out.push_str(&part.to_ascii_lowercase());
            stage = 2;
        } else {
            return None;
        }
    }
    Some(out)
}

/// The language of a canonical tag (`ja` of `ja-JP`).
pub fn language_of(tag: &str) -> &str {
    tag.split('-').next().unwrap_or(tag)
}

/// Checks per-locale texts by the pack's own rules (title 1-64, description 0-300, keywords
/// 1-32 characters each) and returns them under canonical tags.
pub fn check_locales(locales: &Locales) -> Result<Locales, String> {
    if locales.len() > MAX_LOCALES {
        return Err(format!(
            "at most {MAX_LOCALES} locales, got {}",
            locales.len()
        ));
    }
    let mut out = Locales::new();
    for (tag, texts) in locales {
        let shown: String = tag.chars().take(40).collect();
        let canonical = canonical_locale(tag).ok_or_else(|| {
            format!("{shown:?} is not a BCP-47 language tag (ja, pt-BR, zh-Hant)")
        })?;
        check_text(&format!("locales.{canonical}.title"), &texts.title, 1, 64)?;
        check_text(
            &format!("locales.{canonical}.description"),
            &texts.description,
            0,
            300,
        )?;
        if texts.keywords.len() > MAX_KEYWORDS {
            return Err(format!(
                "locales.{canonical}.keywords: at most {MAX_KEYWORDS}, got {}",
                texts.keywords.len()
            ));
        }
        for k in &texts.keywords {
            check_text(&format!("locales.{canonical}.keywords"), k, 1, 32)?;
        }
        if out.insert(canonical.clone(), texts.clone()).is_some() {
            return Err(format!("locale {canonical} is given twice"));
        }
    }
    Ok(out)
}

/// Text as store search compares it: lower case by Unicode's rules, with the foldings lower
/// case leaves apart (`ß` and `ss`, final and medial sigma, the dot Turkish `İ` leaves behind).
/// Applied to what is searched and to the search term alike.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.to_lowercase().chars() {
        match c {
            'ß' | 'ẞ' => out.push_str("ss"),
            'ς' => out.push('σ'),
            '\u{0307}' => {}
            c => out.push(c),
        }
    }
    out
}

/// What store search matches for a pack: its titles, tags and keywords folded, one per line
/// (a search term cannot span two of them: terms hold no line breaks).
pub fn search_text(title: &str, tags: &[String], locales: &Locales) -> String {
    let mut lines: Vec<String> = vec![fold(title)];
    lines.extend(tags.iter().map(|t| fold(t)));
    for texts in locales.values() {
        lines.push(fold(&texts.title));
        lines.extend(texts.keywords.iter().map(|k| fold(k)));
    }
    lines.join("\n")
}

/// The locales a pack has texts in and their languages, space-separated with a space at each
/// end (` pt-BR pt `), so the store's filter matches a whole tag with `LIKE '% pt %'`.
pub fn locale_tags(locales: &Locales) -> String {
    let mut tags: Vec<&str> = Vec::new();
    for tag in locales.keys() {
        for t in [tag.as_str(), language_of(tag)] {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
    }
    if tags.is_empty() {
        String::new()
    } else {
        format!(" {} ", tags.join(" "))
    }
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

    #[test]
    fn locales_are_canonical_bcp47_tags() {
        assert_eq!(canonical_locale("ja").as_deref(), Some("ja"));
        assert_eq!(canonical_locale("pt-br").as_deref(), Some("pt-BR"));
        assert_eq!(
            canonical_locale("zh-hant-tw").as_deref(),
            Some("zh-Hant-TW")
        );
        assert_eq!(canonical_locale("es_419").as_deref(), Some("es-419"));
        assert_eq!(
            canonical_locale("de-CH-1996").as_deref(),
            Some("de-CH-1996")
        );
        for bad in [
            "",
            "j",
            "japanese",
            "ja-",
            "ja-JP-x-private",
            "ja--JP",
            "日本",
            "en-US-u-ca-gregory",
        ] {
            assert_eq!(canonical_locale(bad), None, "{bad}");
        }
        let mut l = Locales::new();
        l.insert(
            "JA".into(),
            LocaleTexts {
                title: "ねこ".into(),
                ..Default::default()
            },
        );
        l.insert(
            "ja".into(),
            LocaleTexts {
                title: "ネコ".into(),
                ..Default::default()
            },
        );
        assert!(check_locales(&l).unwrap_err().contains("twice"));
    }

    #[test]
    fn search_text_holds_every_title_tag_and_keyword_in_lower_case() {
        let mut l = Locales::new();
        l.insert(
            "de".into(),
            LocaleTexts {
                title: "Katzen".into(),
                description: "x".into(),
                keywords: vec!["Süß".into()],
            },
        );
        let text = search_text("Cats", &["Animals".into()], &l);
        assert_eq!(text, "cats\nanimals\nkatzen\nsüss");
        assert_eq!(fold("STRASSE"), fold("Straße"));
        assert_eq!(fold("ΟΔΟΣ"), fold("οδος"));
        assert_eq!(fold("İstanbul"), "istanbul");
        assert_eq!(locale_tags(&l), " de ");
        l.insert(
            "pt-BR".into(),
            LocaleTexts {
                title: "Gatos".into(),
                ..Default::default()
            },
        );
        assert_eq!(locale_tags(&l), " de pt-BR pt ");
    }
}
