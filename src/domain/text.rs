//! How names are compared: what a person types and what is stored must meet
//! on the same normalised form.

/// The key under which a name is unique and searched: trimmed, inner white
/// space collapsed to one space, lower-cased. "  Redmi  1S " → "redmi 1s".
pub fn key(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Letters and digits only, lower-cased: "Redmi-1S", "redmi 1s" and
/// "REDMI1S" all become "redmi1s", so punctuation and spacing never hide a
/// match.
pub fn compact(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The words of a name, compacted: "Redmi Note 4G" → ["redmi", "note", "4g"].
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_case_and_spacing() {
        assert_eq!(key("  Redmi   1S "), "redmi 1s");
        assert_eq!(key("小米"), "小米");
        assert_eq!(key("XIAOMI"), key("xiaomi"));
    }

    #[test]
    fn compact_forms_ignore_punctuation() {
        assert_eq!(compact("Redmi-1S"), "redmi1s");
        assert_eq!(compact("HM 1SW"), "hm1sw");
        assert_eq!(words("Redmi Note (4G)"), vec!["redmi", "note", "4g"]);
    }
}
