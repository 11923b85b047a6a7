//! Stack frames as browsers write them: Chrome's `at f (url:line:col)` and `at url:line:col`,
//! Firefox's and Safari's `f@url:line:col`, and a bare `url:line:col` (a `location`). Read into a
//! [`Frame`] and written back in Chrome's form once mapped.

/// One frame of a stack trace, with its place in the minified file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// What the line has before the frame (Chrome's indentation).
    pub indent: &'a str,
    /// The minified function name, when the frame has one.
    pub function: Option<&'a str>,
    pub url: &'a str,
    /// 1-based, as browsers give them.
    pub line: u32,
    pub column: u32,
}

impl<'a> Frame<'a> {
    /// The file a map is uploaded under: the last segment of the URL's path, without its query
    /// or fragment (`https://shop.example/assets/app.3f2a91c4.js?v=2` → `app.3f2a91c4.js`).
    pub fn file(&self) -> &'a str {
        file_of(self.url)
    }
}

/// The last path segment of `url`, without query or fragment.
pub fn file_of(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

/// A stack line as a frame, or `None` (a message line, `eval` frames, native code).
pub fn parse_line(line: &str) -> Option<Frame<'_>> {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    let trimmed = trimmed.trim_end();
    if let Some(rest) = trimmed.strip_prefix("at ") {
        // Chrome: `at f (place)` or `at place`.
        let (function, place) = match rest.strip_suffix(')').and_then(|r| r.split_once(" (")) {
            Some((function, place)) => (Some(function.trim()), place),
            None => (None, rest),
        };
        let (url, line, column) = split_place(place)?;
        return Some(Frame { indent, function: function.filter(|f| !f.is_empty()), url, line, column });
    }
    // Firefox and Safari: `f@place` (`@place` for an anonymous function).
    let (function, place) = trimmed.split_once('@')?;
    if function.contains(char::is_whitespace) {
        return None;
    }
    let (url, line, column) = split_place(place)?;
    Some(Frame { indent, function: Some(function).filter(|f| !f.is_empty()), url, line, column })
}

/// A `location` (`url:line:col`) as a frame without a function.
pub fn parse_location(location: &str) -> Option<Frame<'_>> {
    let (url, line, column) = split_place(location.trim())?;
    Some(Frame { indent: "", function: None, url, line, column })
}

/// `url:line:col` into its parts; the URL must have a file name.
fn split_place(place: &str) -> Option<(&str, u32, u32)> {
    let (rest, column) = place.rsplit_once(':')?;
    let (url, line) = rest.rsplit_once(':')?;
    let (line, column) = (line.parse().ok()?, column.parse().ok()?);
    (!file_of(url).is_empty() && line > 0).then_some((url, line, column))
}

/// A mapped frame in Chrome's form, with the line's own indentation.
pub fn format_frame(indent: &str, function: Option<&str>, source: &str, line: u32, column: u32) -> String {
    match function {
        Some(function) => format!("{indent}at {function} ({source}:{line}:{column})"),
        None => format!("{indent}at {source}:{line}:{column}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chrome_frames_with_and_without_a_function_are_read() {
        let frame = parse_line("    at t (https://shop.example/assets/app.3f2a91c4.js:1:48213)").expect("frame");
        assert_eq!(frame.indent, "    ");
        assert_eq!(frame.function, Some("t"));
        assert_eq!((frame.url, frame.line, frame.column), ("https://shop.example/assets/app.3f2a91c4.js", 1, 48213));
        assert_eq!(frame.file(), "app.3f2a91c4.js");
        let anonymous = parse_line("at https://shop.example/app.js?v=2#x:3:9").expect("frame");
        assert_eq!((anonymous.function, anonymous.file(), anonymous.line, anonymous.column), (None, "app.js", 3, 9));
        let method = parse_line("    at HTMLButtonElement.onclick (http://127.0.0.1:5000/a/b.js:2:10)").expect("frame");
        assert_eq!((method.function, method.url), (Some("HTMLButtonElement.onclick"), "http://127.0.0.1:5000/a/b.js"));
    }

    #[test]
    fn firefox_and_safari_frames_are_read() {
        let frame = parse_line("submit@https://shop.example/assets/app.js:1:500").expect("frame");
        assert_eq!((frame.function, frame.file(), frame.line, frame.column), (Some("submit"), "app.js", 1, 500));
        let anonymous = parse_line("@https://cdn.example/pkg@1.2/app.js:4:2").expect("frame");
        assert_eq!((anonymous.function, anonymous.url), (None, "https://cdn.example/pkg@1.2/app.js"));
    }

    #[test]
    fn lines_that_are_not_frames_are_left_alone() {
        for line in [
            "TypeError: Cannot read properties of undefined (reading 'x')",
            "    at <anonymous>",
            "    at Array.forEach (native)",
            "at f (https://a.example/:1:2)",
            "Error: see user@example.com:1:2 for details",
            "at f (app.js:0:1)",
            "",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn a_location_is_a_frame_without_a_function() {
        let frame = parse_location("https://shop.example/app.js:1:42").expect("frame");
        assert_eq!((frame.function, frame.file(), frame.line, frame.column), (None, "app.js", 1, 42));
        assert_eq!(parse_location("App > Cart > PayButton"), None);
    }

    #[test]
    fn a_mapped_frame_is_written_in_chromes_form() {
        assert_eq!(format_frame("  ", Some("submitOrder"), "src/a.js", 5, 3), "  at submitOrder (src/a.js:5:3)");
        assert_eq!(format_frame("", None, "src/a.js", 5, 3), "at src/a.js:5:3");
    }
}
