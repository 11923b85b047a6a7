//! The dashboard's addresses, made in one place: the pages link with them, and alert messages
//! point into the dashboard with them (behind `server.public_url`). Every value is
//! percent-encoded.

/// `PATH?project=P&env=E&k=v...`.
pub fn href(path: &str, project: &str, env: &str, params: &[(&str, String)]) -> String {
    let mut href = format!("{path}?project={}&env={}", urlencode(project), urlencode(env));
    for (key, value) in params {
        href.push_str(&format!("&{key}={}", urlencode(value)));
    }
    href
}

/// The logs page: `/logs?project=P&env=E&k=v...`.
pub fn logs(project: &str, env: &str, params: &[(&str, String)]) -> String {
    href("/logs", project, env, params)
}

/// The issues page of a project/environment, with `params`.
pub fn issues(project: &str, env: &str, params: &[(&str, String)]) -> String {
    href("/issues", project, env, params)
}

/// The logs page of an issue's events: its fingerprint searched in `group` (the group of its
/// latest occurrence, when not the project's own: a Lambda function's errors are not in the
/// project's own group), then `params`.
pub fn issue_events(
    (project, env): (&str, &str),
    fingerprint: &str,
    group: Option<&str>,
    params: &[(&str, String)],
) -> String {
    let mut all = vec![("q", format!("fingerprint:{fingerprint}"))];
    all.extend(group.map(|group| ("group", group.to_string())));
    all.extend(params.iter().cloned());
    logs(project, env, &all)
}

/// The logs page of a saved search: its query and its range as it was saved.
pub fn saved_search(search: &crate::searches::SavedSearch) -> String {
    let params: Vec<(&str, String)> =
        [("q", Some(&search.q)), ("from", search.from.as_ref()), ("to", search.to.as_ref())]
            .into_iter()
            .filter_map(|(key, value)| value.filter(|v| !v.is_empty()).map(|v| (key, v.clone())))
            .collect();
    logs(&search.project, &search.env, &params)
}

/// Percent-encodes every byte but the unreserved ones (RFC 3986).
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_percent_encoded_and_an_issue_links_to_its_group() {
        assert_eq!(logs("demo", "dev", &[("q", "a&b c".into())]), "/logs?project=demo&env=dev&q=a%26b%20c");
        assert_eq!(issues("demo", "prod ction", &[]), "/issues?project=demo&env=prod%20ction");
        assert_eq!(
            issue_events(("demo", "production"), "ab12", Some("/aws/lambda/x"), &[("from", "now-7d".into())]),
            "/logs?project=demo&env=production&q=fingerprint%3Aab12&group=%2Faws%2Flambda%2Fx&from=now-7d"
        );
        assert_eq!(urlencode("한"), "%ED%95%9C");
    }
}
