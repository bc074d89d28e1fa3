//! An advisory's body is Markdown; this is the one place that turns it into
//! what people read: sanitised HTML for the advisory page and the mail's
//! HTML part, and clean plain text for the mail's text part (no `**` or
//! `#`, links as numbered footnotes). Whatever an author (or an attacker
//! with an analyst's token) writes, no script, event handler, style or
//! `javascript:` link survives, and nothing is loaded from elsewhere.

use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// The Markdown features authors may use: CommonMark, tables and
/// strikethrough.
fn parser(markdown: &str) -> Parser<'_> {
    Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    )
}

/// Links may go to the web or to an address; nothing else (no
/// `javascript:`, `data:`, relative paths that would break in a mail).
const LINK_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

fn allowed_link(url: &str) -> bool {
    url.split_once(':')
        .is_some_and(|(scheme, _)| LINK_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

/// The sanitiser: ammonia's defaults (no script, no `style`, no event
/// handlers, `rel="noopener noreferrer"` on links) without images — they
/// would be fetched from elsewhere, which the pages' policy forbids and a
/// mail should not do — and with absolute web and mail links only.
static SANITISER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .rm_tags(["img"])
        .url_schemes(HashSet::from(LINK_SCHEMES))
        .url_relative(ammonia::UrlRelative::Deny);
    builder
});

/// The body as sanitised HTML, to be placed inside a page or a mail as is.
pub fn to_html(markdown: &str) -> String {
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, parser(markdown));
    SANITISER.clean(&html).to_string()
}

/// The body as plain text: paragraphs separated by a blank line, list items
/// as `- ` or `1. `, emphasis and headings without their marks, raw HTML
/// dropped, and each web or mail link as `text [n]`, listed at the end.
pub fn to_text(markdown: &str) -> String {
    let mut writer = TextWriter::default();
    for event in parser(markdown) {
        writer.event(event);
    }
    writer.finish()
}

/// Builds the text block by block; a block is a paragraph, a heading, a
/// code block or a whole list.
#[derive(Default)]
struct TextWriter {
    blocks: Vec<Vec<String>>,
    /// The lines of the block being written.
    open: Vec<String>,
    line: String,
    /// The open lists: the next number of an ordered one.
    lists: Vec<Option<u64>>,
    /// The footnoted URLs, in order.
    links: Vec<String>,
    /// For each open link: its URL when it gets a footnote, and where its
    /// text starts in `line`.
    open_links: Vec<(Option<String>, usize)>,
    in_code: bool,
}

impl TextWriter {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) if self.in_code => {
                for line in text.lines() {
                    self.open.push(format!("    {line}").trim_end().to_owned());
                }
            }
            Event::Text(text) | Event::Code(text) => self.line.push_str(&text),
            Event::SoftBreak => self.line.push(' '),
            Event::HardBreak => self.end_line(),
            Event::Rule => self.end_block(),
            Event::TaskListMarker(done) => self.line.push_str(if done { "[x] " } else { "[ ] " }),
            // Raw HTML is not text: the HTML part shows what survives
            // sanitising, the text part none of it.
            _ => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::List(first) => {
                self.end_line();
                self.lists.push(first);
            }
            Tag::Item => {
                self.end_line();
                let depth = self.lists.len().saturating_sub(1);
                let marker = match self.lists.last_mut() {
                    Some(Some(number)) => {
                        *number += 1;
                        format!("{}.", *number - 1)
                    }
                    _ => "-".to_owned(),
                };
                self.line = format!("{}{marker} ", "  ".repeat(depth));
            }
            Tag::CodeBlock(kind) => {
                self.end_block();
                self.in_code = matches!(kind, CodeBlockKind::Fenced(_) | CodeBlockKind::Indented);
            }
            Tag::Link { dest_url, .. } => {
                let footnote = allowed_link(&dest_url).then(|| dest_url.to_string());
                self.open_links.push((footnote, self.line.len()));
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::TableRow | TagEnd::TableHead if !self.lists.is_empty() => {
                self.end_line();
            }
            TagEnd::TableRow | TagEnd::TableHead => self.end_line(),
            TagEnd::TableCell => self.line.push_str("  "),
            TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::Table => self.end_block(),
            TagEnd::Item => self.end_line(),
            TagEnd::List(_) => {
                self.lists.pop();
                if self.lists.is_empty() {
                    self.end_block();
                }
            }
            TagEnd::CodeBlock => {
                self.in_code = false;
                self.end_block();
            }
            TagEnd::Link => {
                let Some((Some(url), start)) = self.open_links.pop() else {
                    return;
                };
                let text = self.line[start..].trim();
                let bare = url.strip_prefix("mailto:").unwrap_or(&url);
                // An autolink shows its address already.
                if text != url && text != bare {
                    let number = match self.links.iter().position(|l| *l == url) {
                        Some(i) => i + 1,
                        None => {
                            self.links.push(url);
                            self.links.len()
                        }
                    };
                    self.line.push_str(&format!(" [{number}]"));
                }
            }
            _ => {}
        }
    }

    fn end_line(&mut self) {
        let line = self.line.trim_end();
        if !line.trim().is_empty() {
            self.open.push(line.to_owned());
        }
        self.line.clear();
    }

    fn end_block(&mut self) {
        self.end_line();
        if !self.open.is_empty() {
            self.blocks.push(std::mem::take(&mut self.open));
        }
    }

    fn finish(mut self) -> String {
        self.end_block();
        if !self.links.is_empty() {
            self.blocks.push(
                self.links
                    .iter()
                    .enumerate()
                    .map(|(i, url)| format!("[{}] {url}", i + 1))
                    .collect(),
            );
        }
        self.blocks
            .iter()
            .map(|block| block.join("\n"))
            .collect::<Vec<_>>()
            .join("\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_keeps_the_formatting_and_drops_scripts() {
        let html = to_html(
            "# Heading\n\n**Do not use this phone.**\n\n<script>alert(1)</script>\n\n\
             A [bad](javascript:alert(1)) and a [good](https://example.org/x) link, \
             <img src=\"https://tracker.example/p.png\"> <b onclick=\"alert(1)\">bold</b>.",
        );
        assert!(html.contains("<h1>Heading</h1>"), "{html}");
        assert!(
            html.contains("<strong>Do not use this phone.</strong>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"https://example.org/x\" rel=\"noopener noreferrer\">good</a>"),
            "{html}"
        );
        for gone in [
            "<script",
            "alert(1)",
            "javascript:",
            "<img",
            "tracker",
            "onclick",
        ] {
            assert!(!html.contains(gone), "{gone}: {html}");
        }
        assert!(html.contains("<b>bold</b>"), "{html}");
        assert!(
            html.contains("<a rel=\"noopener noreferrer\">bad</a>"),
            "{html}"
        );
    }

    #[test]
    fn text_has_no_marks_and_links_become_footnotes() {
        let text = to_text(
            "## What was found\n\n**Do not use this phone.** It sends *contacts* to \
             [a server](https://example.org/report) abroad (see \
             [the report](https://example.org/report) and [the vendor](https://vendor.example)).\n\n\
             - first\n- second with `code`\n  1. nested\n\n\
             Write to <security@example.org> or <https://example.org>.\n\n\
             A [trap](javascript:alert(1)) <script>x</script>",
        );
        assert_eq!(
            text,
            "What was found\n\n\
             Do not use this phone. It sends contacts to a server [1] abroad (see the report [1] \
             and the vendor [2]).\n\n\
             - first\n- second with code\n  1. nested\n\n\
             Write to security@example.org or https://example.org.\n\n\
             A trap x\n\n\
             [1] https://example.org/report\n[2] https://vendor.example"
        );
    }

    #[test]
    fn text_keeps_code_blocks_and_numbered_lists() {
        let text = to_text("Steps:\n\n3. open Settings\n4. update\n\n```\n*#06#\n```\n");
        assert_eq!(text, "Steps:\n\n3. open Settings\n4. update\n\n    *#06#");
    }

    #[test]
    fn plain_prose_stays_as_written() {
        assert_eq!(
            to_text("One line.\nSame paragraph."),
            "One line. Same paragraph."
        );
        assert_eq!(to_html("a < b & c"), "<p>a &lt; b &amp; c</p>\n");
        assert_eq!(to_text(""), "");
    }
}
