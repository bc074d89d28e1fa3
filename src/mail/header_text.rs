//! User data (a person's name, an advisory title) made fit for a header
//! field. lettre never lets CR/LF start a new header, but in two unhelpful
//! ways: in a subject it hides them in an encoded word (no injection, yet
//! the reader's subject has a line break), and in a display name it
//! *panics* (`Mailbox`'s `Display` fails, and `to_string` panics on that),
//! which would kill a sender task. So names and subjects pass through here.

/// `value` with every run of control characters and whitespace (CR, LF,
/// TAB, …) turned into one space, and trimmed.
pub fn header_text(value: &str) -> String {
    value
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_controls_become_single_spaces() {
        assert_eq!(
            header_text("Redmi 1S\r\nBcc: evil@x"),
            "Redmi 1S Bcc: evil@x"
        );
        assert_eq!(header_text("  a\t\u{7}b\u{2028}c \r\n"), "a b c");
        assert_eq!(header_text("Örn Þórsson"), "Örn Þórsson");
        assert_eq!(header_text("\r\n"), "");
    }
}
