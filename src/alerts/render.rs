//! A [`Notification`] as each channel shows it: a Slack incoming-webhook payload (Block Kit with a
//! plain-text fallback) and an e-mail (subject, plain text, HTML). Both are built from one
//! [`Content`], so every channel says the same thing.
//!
//! Everything in a notification may come from a logged event (titles, messages), so it is
//! escaped for where it goes: Slack mrkdwn (`&`, `<`, `>`), HTML (askama), and header-safe text
//! for the subject. Lengths are bounded to stay under Slack's block limits and keep mails short.

use askama::Template;
use serde_json::{Value, json};

use super::notification::{IssueLine, Notification, What};

/// Issues or details listed in one message; the rest are counted ("and 3 more").
const MAX_ITEMS: usize = 20;
/// Characters of an issue title or detail line.
const MAX_ITEM_CHARS: usize = 200;
/// Characters of the newest event's message.
const MAX_MESSAGE_CHARS: usize = 500;
/// Characters of a title inside the subject.
const MAX_SUBJECT_TITLE_CHARS: usize = 100;
/// Slack: a header's plain text is at most 150 characters, a section's text at most 3000, a
/// button's URL at most 3000.
const SLACK_HEADER_CHARS: usize = 150;
const SLACK_SECTION_CHARS: usize = 3000;
const SLACK_URL_CHARS: usize = 3000;

/// What a message says, before any channel's formatting.
#[derive(Debug, Clone, PartialEq)]
struct Content {
    /// `checkout errors — firing`.
    header: String,
    /// The e-mail subject, without control characters.
    subject: String,
    /// `demo/production`, or `logboard` for the monitor's alerts about the service.
    place: String,
    /// One sentence: the count and window, the number of issues, the problem.
    summary: String,
    /// The issues (linked) or the monitor's details, at most [`MAX_ITEMS`].
    items: Vec<Item>,
    /// Items left out of `items`.
    more: usize,
    /// The newest event's message, truncated.
    newest: Option<String>,
    link: String,
}

#[derive(Debug, Clone, PartialEq)]
struct Item {
    text: String,
    link: Option<String>,
}

impl Content {
    fn of(n: &Notification) -> Content {
        let place = match (&n.project, &n.env) {
            (Some(p), Some(e)) => format!("{p}/{e}"),
            (Some(p), None) => p.clone(),
            (None, Some(e)) => e.clone(),
            (None, None) => "logboard".to_string(),
        };
        let rule = &n.rule;
        let (state, subject, summary, items) = match &n.what {
            What::Threshold { count, threshold, window_secs, reminder } => {
                let window = human_secs(*window_secs);
                let events = plural(*count, "event", "events");
                let (state, still) = if *reminder { ("still firing", " (still firing)") } else { ("firing", "") };
                (
                    state,
                    format!("{rule}: {events} in {place}{still}"),
                    format!("{events} in the last {window} (threshold {threshold})."),
                    Vec::new(),
                )
            }
            What::NewIssues { issues } => issue_content(rule, &place, issues, "new issue", "new issues"),
            What::Regressions { issues } => issue_content(rule, &place, issues, "regression", "regressed issues"),
            What::Resolved => {
                ("resolved", format!("{rule}: resolved in {place}"), "No longer firing.".to_string(), Vec::new())
            }
            What::Monitor { problem, details, resolved } => {
                let items = details.iter().map(|d| Item { text: truncate(d, MAX_ITEM_CHARS), link: None }).collect();
                let problem = truncate(problem, MAX_ITEM_CHARS);
                if *resolved {
                    ("resolved", format!("{rule}: resolved: {problem}"), format!("Resolved: {problem}"), items)
                } else {
                    ("firing", format!("{rule}: {problem}"), problem, items)
                }
            }
        };
        let more = items.len().saturating_sub(MAX_ITEMS);
        Content {
            header: format!("{rule} — {state}"),
            subject: header_safe(&format!("[logboard] {subject}")),
            place,
            summary,
            items: items.into_iter().take(MAX_ITEMS).collect(),
            more,
            newest: n.newest_message.as_deref().map(|m| truncate(m, MAX_MESSAGE_CHARS)),
            link: n.link.clone(),
        }
    }
}

/// State, subject, summary and items of a message listing issues (new or regressed).
fn issue_content(
    rule: &str,
    place: &str,
    issues: &[IssueLine],
    one: &'static str,
    many: &'static str,
) -> (&'static str, String, String, Vec<Item>) {
    let (subject, summary) = match issues {
        [issue] => (
            format!("{rule}: {one}: {}", truncate(&issue.title, MAX_SUBJECT_TITLE_CHARS)),
            format!("1 {one} in {place}."),
        ),
        _ => (format!("{rule}: {} {many} in {place}", issues.len()), format!("{} {many} in {place}.", issues.len())),
    };
    let items = issues
        .iter()
        .map(|issue| Item {
            text: format!("{} ({})", truncate(&issue.title, MAX_ITEM_CHARS), plural(issue.count, "event", "events")),
            link: Some(issue.link.clone()),
        })
        .collect();
    ("firing", subject, summary, items)
}

/// The Slack incoming-webhook payload: Block Kit `blocks` and the `text` fallback that
/// notifications and old clients show.
pub fn slack(n: &Notification) -> Value {
    let c = Content::of(n);
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&c.header, SLACK_HEADER_CHARS)}}),
        section(format!("*{}* · {}", mrkdwn(&c.place), mrkdwn(&c.summary))),
    ];
    if !c.items.is_empty() {
        let mut lines = String::new();
        let mut left_out = c.more;
        for (i, item) in c.items.iter().enumerate() {
            let line = match &item.link {
                Some(link) => format!("• <{}|{}>\n", mrkdwn_url(link), mrkdwn(&item.text)),
                None => format!("• {}\n", mrkdwn(&item.text)),
            };
            // Room for the "and N more" line.
            if lines.len() + line.len() > SLACK_SECTION_CHARS - 40 {
                left_out += c.items.len() - i;
                break;
            }
            lines.push_str(&line);
        }
        if left_out > 0 {
            lines.push_str(&format!("…and {left_out} more"));
        }
        blocks.push(section(lines.trim_end().to_string()));
    }
    if let Some(message) = &c.newest {
        let quoted: Vec<String> = message.lines().map(|l| format!("> {}", mrkdwn(l))).collect();
        blocks.push(section(format!("*Newest event*\n{}", quoted.join("\n"))));
    }
    if c.link.len() <= SLACK_URL_CHARS {
        blocks.push(json!({"type": "actions", "elements": [{
            "type": "button",
            "text": {"type": "plain_text", "text": "Open in logboard"},
            "url": c.link,
        }]}));
    }
    // Slack reads `text` as mrkdwn too, so it is escaped the same way.
    let text = format!(
        "{}: {} · {} <{}|Open in logboard>",
        mrkdwn(&c.header),
        mrkdwn(&c.place),
        mrkdwn(&c.summary),
        mrkdwn_url(&c.link)
    );
    json!({"text": text, "blocks": blocks})
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// One e-mail: the same content as plain text and HTML.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Template)]
#[template(path = "email.html")]
struct EmailHtml<'a> {
    c: &'a Content,
}

pub fn email(n: &Notification) -> Email {
    let c = Content::of(n);
    let mut text = format!("{}\n{}: {}\n", c.header, c.place, c.summary);
    if !c.items.is_empty() {
        text.push('\n');
        for item in &c.items {
            match &item.link {
                Some(link) => text.push_str(&format!("- {}\n  {link}\n", item.text)),
                None => text.push_str(&format!("- {}\n", item.text)),
            }
        }
        if c.more > 0 {
            text.push_str(&format!("…and {} more\n", c.more));
        }
    }
    if let Some(message) = &c.newest {
        text.push_str("\nNewest event:\n");
        for line in message.lines() {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text.push_str(&format!("\nOpen in logboard: {}\n", c.link));
    // Rendering a template of plain fields cannot fail; if it ever did, the text part still says
    // everything.
    let html = EmailHtml { c: &c }.render().unwrap_or_else(|_| String::new());
    Email { subject: c.subject, text, html }
}

/// Escapes the three characters Slack's mrkdwn reads as markup.
fn mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A URL inside `<url|label>`: `|`, `<` and `>` would end it early, so they are percent-encoded.
fn mrkdwn_url(url: &str) -> String {
    url.replace('&', "&amp;").replace('|', "%7C").replace('<', "%3C").replace('>', "%3E")
}

/// At most `max` characters, with `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) if text[at..].chars().nth(1).is_some() => format!("{}…", &text[..at]),
        _ => text.to_string(),
    }
}

/// One line, no control characters: a subject never carries a line break into the headers.
fn header_safe(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `300` → `5 min`, `3600` → `1 h`, `90` → `90 s`.
fn human_secs(secs: u64) -> String {
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(count: u64, reminder: bool) -> Notification {
        Notification {
            rule: "checkout errors".into(),
            project: Some("demo".into()),
            env: Some("production".into()),
            what: What::Threshold { count, threshold: 5, window_secs: 300, reminder },
            newest_message: Some("payment failed: <card> & \"declined\"\nat line 2".into()),
            link: "https://logs.example.com/logs?project=demo&env=production&q=level%3A%3E%3Derror".into(),
        }
    }

    fn issue(title: &str, count: u64) -> IssueLine {
        IssueLine {
            title: title.into(),
            fingerprint: format!("fp-{count}"),
            count,
            link: format!("https://logs.example.com/issues/fp-{count}?project=demo&env=production"),
        }
    }

    fn new_issues(issues: Vec<IssueLine>) -> Notification {
        Notification {
            rule: "new errors".into(),
            project: Some("demo".into()),
            env: Some("production".into()),
            what: What::NewIssues { issues },
            newest_message: None,
            link: "https://logs.example.com/issues?project=demo&env=production".into(),
        }
    }

    fn texts(payload: &Value) -> Vec<String> {
        payload["blocks"]
            .as_array()
            .expect("blocks")
            .iter()
            .filter_map(|b| b["text"]["text"].as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn a_threshold_message_for_slack_names_the_rule_place_count_window_and_links_to_the_dashboard() {
        let n = threshold(7, false);
        let payload = slack(&n);
        let blocks = payload["blocks"].as_array().expect("blocks");
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], "checkout errors — firing");
        let all = texts(&payload).join("\n");
        assert!(all.contains("*demo/production* · 7 events in the last 5 min (threshold 5)."), "{all}");
        let button = &blocks.last().expect("a block")["elements"][0];
        assert_eq!(button["url"], n.link.as_str());
        let text = payload["text"].as_str().expect("text");
        assert!(text.starts_with("checkout errors — firing: demo/production · 7 events"), "{text}");
        assert!(text.contains("<https://logs.example.com/logs?project=demo&amp;env=production"), "{text}");
    }

    #[test]
    fn the_newest_message_is_escaped_for_slack_and_quoted_line_by_line() {
        let all = texts(&slack(&threshold(7, false))).join("\n");
        assert!(
            all.contains("*Newest event*\n> payment failed: &lt;card&gt; &amp; \"declined\"\n> at line 2"),
            "{all}"
        );
        assert!(!all.contains("<card>"), "{all}");
    }

    #[test]
    fn a_long_message_is_cut_with_an_ellipsis_at_a_character_boundary() {
        let mut n = threshold(7, false);
        n.newest_message = Some("é".repeat(2 * MAX_MESSAGE_CHARS));
        let mail = email(&n);
        let quoted = mail.text.lines().find(|l| l.starts_with("  é")).expect("the message line");
        assert_eq!(quoted.trim().chars().count(), MAX_MESSAGE_CHARS);
        assert!(quoted.ends_with('…'), "{quoted}");
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("exactly", 7), "exactly");
        assert_eq!(truncate("exactly8", 7), "exactl…");
    }

    #[test]
    fn a_reminder_says_it_is_still_firing_in_subject_and_header() {
        let mail = email(&threshold(12, true));
        assert_eq!(mail.subject, "[logboard] checkout errors: 12 events in demo/production (still firing)");
        assert!(mail.text.starts_with("checkout errors — still firing\n"), "{}", mail.text);
    }

    #[test]
    fn a_threshold_mail_has_the_spec_subject_and_the_same_content_in_text_and_html() {
        let n = threshold(7, false);
        let mail = email(&n);
        assert_eq!(mail.subject, "[logboard] checkout errors: 7 events in demo/production");
        assert!(mail.text.contains("demo/production: 7 events in the last 5 min (threshold 5)."), "{}", mail.text);
        assert!(mail.text.contains("  payment failed: <card> & \"declined\"\n  at line 2\n"), "{}", mail.text);
        assert!(mail.text.contains(&format!("Open in logboard: {}", n.link)), "{}", mail.text);
        assert!(mail.html.contains("7 events in the last 5 min (threshold 5)."), "{}", mail.html);
        assert!(mail.html.contains("payment failed: &#60;card&#62; &#38; &#34;declined&#34;"), "{}", mail.html);
        assert!(!mail.html.contains("<card>"), "{}", mail.html);
        assert!(
            mail.html.contains("href=\"https://logs.example.com/logs?project=demo&#38;env=production"),
            "{}",
            mail.html
        );
    }

    #[test]
    fn one_new_issue_is_named_in_the_subject_and_several_are_counted() {
        let one = email(&new_issues(vec![issue("TypeError: x is undefined", 3)]));
        assert_eq!(one.subject, "[logboard] new errors: new issue: TypeError: x is undefined");
        let ten: Vec<IssueLine> = (1..=10).map(|i| issue(&format!("Error number {i}"), i)).collect();
        let many = new_issues(ten.clone());
        let mail = email(&many);
        assert_eq!(mail.subject, "[logboard] new errors: 10 new issues in demo/production");
        for i in &ten {
            assert!(mail.text.contains(&format!("- {} ({} event", i.title, i.count)), "{}", mail.text);
            assert!(mail.text.contains(&i.link), "{}", mail.text);
        }
        let all = texts(&slack(&many)).join("\n");
        for i in &ten {
            let link = i.link.replace('&', "&amp;");
            assert!(all.contains(&format!("• <{link}|{} (", i.title)), "{all}");
        }
        assert!(all.contains("10 new issues in demo/production."), "{all}");
    }

    #[test]
    fn issue_titles_with_markup_are_escaped_in_slack_html_and_kept_off_the_subject_line() {
        let n = new_issues(vec![issue("<script>alert(1)</script>\r\nBcc: x@example.com", 1)]);
        let mail = email(&n);
        assert!(!mail.subject.contains('\n') && !mail.subject.contains('\r'), "{}", mail.subject);
        assert!(mail.html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{}", mail.html);
        assert!(!mail.html.contains("<script>"), "{}", mail.html);
        let all = texts(&slack(&n)).join("\n");
        assert!(all.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{all}");
    }

    #[test]
    fn more_issues_than_a_message_lists_are_counted_not_dropped() {
        let issues: Vec<IssueLine> = (1..=25).map(|i| issue(&format!("Error {i}"), i)).collect();
        let n = new_issues(issues);
        assert!(email(&n).text.contains("…and 5 more"));
        let all = texts(&slack(&n)).join("\n");
        assert!(all.contains("…and 5 more"), "{all}");
        assert!(all.contains("Error 20 (") && !all.contains("Error 21 ("), "{all}");
    }

    #[test]
    fn slack_sections_stay_under_the_block_limit_with_long_titles_and_links() {
        let issues: Vec<IssueLine> = (1..=20)
            .map(|i| IssueLine { link: format!("https://x/{}", "a".repeat(400)), ..issue(&"t".repeat(300), i) })
            .collect();
        let payload = slack(&new_issues(issues));
        for text in texts(&payload) {
            assert!(text.chars().count() <= SLACK_SECTION_CHARS, "{}", text.len());
        }
        assert!(texts(&payload).join("\n").contains("more"));
    }

    #[test]
    fn resolved_regression_and_monitor_messages_say_what_happened() {
        let mut n = threshold(0, false);
        n.what = What::Resolved;
        assert_eq!(email(&n).subject, "[logboard] checkout errors: resolved in demo/production");
        assert_eq!(slack(&n)["blocks"][0]["text"]["text"], "checkout errors — resolved");

        let mut n = new_issues(vec![issue("KeyError: 'cart'", 2)]);
        n.what = What::Regressions { issues: vec![issue("KeyError: 'cart'", 2)] };
        assert_eq!(email(&n).subject, "[logboard] new errors: regression: KeyError: 'cart'");

        let monitor = Notification {
            rule: "monitor: canary".into(),
            project: None,
            env: None,
            what: What::Monitor {
                problem: "the canary failed twice".into(),
                details: vec!["store read timed out after 30 s".into()],
                resolved: false,
            },
            newest_message: None,
            link: "https://logs.example.com/alerts".into(),
        };
        let mail = email(&monitor);
        assert_eq!(mail.subject, "[logboard] monitor: canary: the canary failed twice");
        assert!(mail.text.contains("logboard: the canary failed twice\n"), "{}", mail.text);
        assert!(mail.text.contains("- store read timed out after 30 s\n"), "{}", mail.text);
        assert!(mail.html.contains("store read timed out after 30 s"), "{}", mail.html);
        let all = texts(&slack(&monitor)).join("\n");
        assert!(all.contains("• store read timed out after 30 s"), "{all}");

        let mut cleared = monitor.clone();
        cleared.what = What::Monitor { problem: "the canary failed twice".into(), details: Vec::new(), resolved: true };
        assert_eq!(email(&cleared).subject, "[logboard] monitor: canary: resolved: the canary failed twice");
    }

    #[test]
    fn windows_read_as_people_write_them() {
        assert_eq!(human_secs(300), "5 min");
        assert_eq!(human_secs(7200), "2 h");
        assert_eq!(human_secs(90), "90 s");
    }
}
