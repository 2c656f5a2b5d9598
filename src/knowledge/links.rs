//! Which links may reach a page of this server's origin: article bodies
//! are rendered on `/kb/{id}` and in the admin preview, and an article's
//! `url` becomes the citation link in the widget and the console. A
//! `javascript:`, `data:` or `vbscript:` target there runs script with the
//! console's session; `//evil.example` and `/\evil.example` leave the site.

use pulldown_cmark::{Event, Parser, Tag};

/// Schemes a link in an article may use.
const SAFE_SCHEMES: [&str; 4] = ["http", "https", "mailto", "tel"];

/// Whether a Markdown link or image target is safe in a page: a relative
/// link on this site, or one of [`SAFE_SCHEMES`].
pub fn is_safe_target(target: &str) -> bool {
    // Browsers drop tabs, newlines and control characters inside a URL and
    // read a scheme in any case ("Java\tScript:").
    let t: String = target
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if leaves_the_site(&t) {
        return false;
    }
    match scheme(&t) {
        Some(s) => SAFE_SCHEMES.contains(&s),
        None => true,
    }
}

/// A target that a browser reads as another host without a scheme.
fn leaves_the_site(t: &str) -> bool {
    t.starts_with("//") || t.starts_with("/\\") || t.starts_with('\\')
}

/// The scheme of a URL, if it has one: what comes before a ':' that
/// precedes any '/', '?' or '#'.
fn scheme(t: &str) -> Option<&str> {
    let end = t.find([':', '/', '?', '#'])?;
    (t.as_bytes()[end] == b':').then(|| &t[..end])
}

/// Whether `url` may be an article's citation link: an absolute http(s)
/// URL with a host, or a path on this server.
pub fn is_valid_article_url(url: &str) -> bool {
    if url
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return false;
    }
    if let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        return !host.is_empty() && !host.contains('@');
    }
    url.starts_with('/') && !leaves_the_site(url)
}

/// The first link or image target in a Markdown body that is not safe.
pub fn first_unsafe_target(markdown: &str) -> Option<String> {
    Parser::new(markdown).find_map(|event| match event {
        Event::Start(Tag::Link { dest_url, .. }) | Event::Start(Tag::Image { dest_url, .. })
            if !is_safe_target(&dest_url) =>
        {
            Some(dest_url.to_string())
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_and_data_targets_are_unsafe_however_written() {
        for t in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " java\tscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
        ] {
            assert!(!is_safe_target(t), "{t}");
        }
        for t in [
            "https://shop.example/returns",
            "http://shop.example",
            "/kb/returns",
            "returns#window",
            "#top",
            "mailto:help@shop.example",
            "tel:+31201234567",
            "faq?q=a:b",
        ] {
            assert!(is_safe_target(t), "{t}");
        }
    }

    #[test]
    fn entity_encoded_and_autolinked_scripts_are_found() {
        for body in [
            "[x](javascript:alert(1))",
            "[x](&#106;avascript:alert(1))",
            "[x](java&#x09;script:alert(1))",
            "<javascript:alert(1)>",
            "![x](data:image/svg+xml;base64,PHN2Zz4=)",
            "[x][r]\n\n[r]: vbscript:msgbox(1)",
        ] {
            assert!(first_unsafe_target(body).is_some(), "{body}");
        }
        assert_eq!(
            first_unsafe_target("See [returns](/kb/returns) or <https://a.example>."),
            None
        );
    }

    #[test]
    fn article_urls_are_http_or_a_path_here() {
        for u in [
            "https://shop.example/help/returns",
            "http://shop.example",
            "/kb/returns",
        ] {
            assert!(is_valid_article_url(u), "{u}");
        }
        for u in [
            "javascript:alert(1)",
            "//evil.example",
            "/\\evil.example",
            "https://",
            "https://user@evil.example",
            "https://shop.example/a b",
            "shop.example",
            "data:text/html,x",
        ] {
            assert!(!is_valid_article_url(u), "{u}");
        }
    }

    #[test]
    fn rendering_keeps_an_unsafe_link_s_words_only() {
        let html = crate::knowledge::render_markdown(
            "[a](javascript:alert(1)) ![b](data:x) [c](/kb/returns) <https://x.example>",
        );
        assert_eq!(
            html,
            "<p>a b <a href=\"/kb/returns\">c</a> <a href=\"https://x.example\">https://x.example</a></p>\n"
        );
    }
}
