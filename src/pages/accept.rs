//! Which answer a client wants: the links in mail are opened by browsers
//! (an HTML page) and by programs (JSON), at the same URL.

/// Whether the `Accept` header ranks HTML above JSON. Without the header,
/// or with a tie (`*/*`), the answer is JSON: programs send no preference,
/// browsers always name `text/html`.
pub fn prefers_html(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let json =
        quality(accept, "application", "json").max(quality(accept, "application", "problem+json"));
    quality(accept, "text", "html") > json
}

/// The quality the header gives `kind/subtype`: that of its most specific
/// matching range (exact, then `kind/*`, then `*/*`), 0 when none matches.
fn quality(accept: &str, kind: &str, subtype: &str) -> f32 {
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let Some((range_kind, range_subtype)) =
            parts.next().and_then(|media| media.trim().split_once('/'))
        else {
            continue;
        };
        let specificity = match (range_kind.trim(), range_subtype.trim()) {
            (k, s) if k.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(subtype) => 2,
            (k, "*") if k.eq_ignore_ascii_case(kind) => 1,
            ("*", "*") => 0,
            _ => continue,
        };
        let q = parts
            .filter_map(|param| param.trim().split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, value)| value.trim().parse::<f32>().ok())
            .map_or(1.0, |q| q.clamp(0.0, 1.0));
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_get_html() {
        for browser in [
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "TEXT/HTML",
            "text/*, application/json;q=0.5",
        ] {
            assert!(prefers_html(Some(browser)), "{browser}");
        }
    }

    #[test]
    fn programs_and_ties_get_json() {
        for program in [
            None,
            Some("*/*"),
            Some("application/json"),
            Some("application/problem+json, text/html;q=0.9"),
            Some("application/json, text/html"),
            Some("text/html;q=0, */*"),
            Some("garbage"),
            Some(""),
        ] {
            assert!(!prefers_html(program), "{program:?}");
        }
    }
}
