//! Every line kind as the runtimes print it (Python 3.12 and Node.js 20 managed runtimes, text
//! and JSON log formats, the platform's lines).

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const ID: &str = "3f1c9a2e-5b7d-4e21-9c1a-0d2f6b8e4a17";

fn extra(line: &Line) -> Value {
    Value::Object(line.extra.clone())
}

fn fields(line: &Line) -> (Level, &str, Option<&str>) {
    (line.level, line.message.as_str(), line.kind.as_deref())
}

#[test]
fn python_runtime_lines_give_their_level_message_and_request_id() {
    for (name, level) in [
        ("DEBUG", Level::Debug),
        ("INFO", Level::Info),
        ("WARNING", Level::Warn),
        ("ERROR", Level::Error),
        ("CRITICAL", Level::Fatal),
    ] {
        let line = parse(&format!("[{name}]\t2026-11-24T15:02:03.456Z\t{ID}\tcharging order 42\n"));
        assert_eq!(fields(&line), (level, "charging order 42", None), "{name}");
        assert_eq!((extra(&line), line.stack.as_deref()), (json!({"request_id": ID}), None), "{name}");
    }
}

#[test]
fn a_python_traceback_in_the_same_event_is_the_stack_and_its_last_line_the_type() {
    let text = format!(
        "[ERROR]\t2026-11-24T15:02:03.456Z\t{ID}\tpayment failed for order 42\nTraceback (most recent call last):\n  \
         File \"/var/task/app.py\", line 18, in handler\n    charge(order)\n  File \"/var/task/billing.py\", line 7, \
         in charge\n    card = order[\"card\"]\nKeyError: 'card'\n"
    );
    let line = parse(&text);
    assert_eq!(fields(&line), (Level::Error, "payment failed for order 42", Some("KeyError")));
    let stack = line.stack.as_deref().expect("a stack");
    assert!(stack.starts_with("Traceback (most recent call last):\n  File \"/var/task/app.py\""), "{stack}");
    assert!(stack.ends_with("KeyError: 'card'"), "{stack}");
    assert_eq!(extra(&line), json!({"request_id": ID}));
}

#[test]
fn the_python_runtimes_report_of_an_unhandled_exception_names_the_type_before_the_traceback() {
    let line = parse(
        "[ERROR] KeyError: 'order_id'\nTraceback (most recent call last):\n  File \"/var/task/app.py\", line 12, \
         in handler\n    order = event[\"order_id\"]\n",
    );
    assert_eq!(fields(&line), (Level::Error, "KeyError: 'order_id'", Some("KeyError")));
    assert_eq!(
        line.stack.as_deref(),
        Some(
            "Traceback (most recent call last):\n  File \"/var/task/app.py\", line 12, in handler\n    order = event[\"order_id\"]"
        )
    );
    assert_eq!(extra(&line), json!({}), "the runtime writes no request id here");

    let line = parse(
        "[ERROR] Runtime.ImportModuleError: Unable to import module 'app': No module named 'requests'\n\
         Traceback (most recent call last):",
    );
    assert_eq!(line.kind.as_deref(), Some("Runtime.ImportModuleError"));
}

#[test]
fn a_dotted_exception_at_the_end_of_a_traceback_is_the_type_and_a_message_word_never_is() {
    let text = format!(
        "[ERROR]\t2026-11-24T15:02:03.456Z\t{ID}\tupload: giving up\nTraceback (most recent call last):\n  File \
         \"/var/task/app.py\", line 30, in handler\n    s3.put_object(**args)\nbotocore.exceptions.ClientError: An \
         error occurred (AccessDenied) when calling the PutObject operation: Access Denied"
    );
    assert_eq!(parse(&text).kind.as_deref(), Some("botocore.exceptions.ClientError"));
    // A traceback cut after a source line names no exception; "upload" is the author's word.
    let cut = format!(
        "[ERROR]\t2026-11-24T15:02:03.456Z\t{ID}\tupload: giving up\nTraceback (most recent call last):\n  File \
         \"/var/task/app.py\", line 30, in handler\n    s3.put_object(**args)\n"
    );
    let line = parse(&cut);
    assert_eq!(fields(&line), (Level::Error, "upload: giving up", None));
    assert!(line.stack.is_some());
}

#[test]
fn a_multi_line_python_message_without_a_traceback_stays_the_message() {
    let line = parse(&format!("[INFO]\t2026-11-24T15:02:03.456Z\t{ID}\tbatch done:\n  12 ok\n  1 failed\n"));
    assert_eq!(fields(&line), (Level::Info, "batch done:\n  12 ok\n  1 failed", None));
    assert_eq!(line.stack, None);
}

#[test]
fn node_runtime_lines_give_their_level_message_and_request_id() {
    for (name, level) in [
        ("TRACE", Level::Debug),
        ("DEBUG", Level::Debug),
        ("INFO", Level::Info),
        ("WARN", Level::Warn),
        ("ERROR", Level::Error),
        ("FATAL", Level::Fatal),
    ] {
        let line = parse(&format!("2026-11-24T15:02:03.456Z\t{ID}\t{name}\torder 42 charged\n"));
        assert_eq!(fields(&line), (level, "order 42 charged", None), "{name}");
        assert_eq!(extra(&line), json!({"request_id": ID}), "{name}");
    }
    // Outside an invocation (module load) the runtime writes `undefined` for the id.
    let line = parse("2026-11-24T15:02:01.001Z\tundefined\tINFO\tLoading function");
    assert_eq!((fields(&line), extra(&line)), ((Level::Info, "Loading function", None), json!({})));
}

#[test]
fn a_logged_node_error_is_its_first_line_with_the_whole_stack_and_its_name_as_type() {
    let text = format!(
        "2026-11-24T15:02:03.456Z\t{ID}\tERROR\tTypeError: Cannot read properties of undefined (reading 'id')\n    \
         at Runtime.handler (file:///var/task/index.mjs:4:22)\n    at Runtime.handleOnceNonStreaming \
         (file:///var/runtime/index.mjs:1173:29)\n"
    );
    let line = parse(&text);
    assert_eq!(
        fields(&line),
        (Level::Error, "TypeError: Cannot read properties of undefined (reading 'id')", Some("TypeError"))
    );
    let stack = line.stack.as_deref().expect("a stack");
    assert!(stack.starts_with("TypeError: Cannot read") && stack.ends_with("index.mjs:1173:29)"), "{stack}");
}

#[test]
fn a_node_invoke_error_gives_type_message_and_stack_from_its_json() {
    let text = format!(
        "2026-11-24T15:02:03.456Z\t{ID}\tERROR\tInvoke Error \t{{\"errorType\":\"Error\",\"errorMessage\":\"card \
         declined\",\"stack\":[\"Error: card declined\",\"    at charge (/var/task/index.js:10:11)\",\"    at \
         Runtime.handler (/var/task/index.js:4:9)\"]}}\n"
    );
    let line = parse(&text);
    assert_eq!(fields(&line), (Level::Error, "card declined", Some("Error")));
    assert_eq!(
        line.stack.as_deref(),
        Some(
            "Error: card declined\n    at charge (/var/task/index.js:10:11)\n    at Runtime.handler (/var/task/index.js:4:9)"
        )
    );
    assert_eq!(extra(&line), json!({"request_id": ID}));

    let rejection = format!(
        "2026-11-24T15:02:03.456Z\t{ID}\tERROR\tUnhandled Promise Rejection \t{{\"errorType\":\"Runtime.\
         UnhandledPromiseRejection\",\"errorMessage\":\"Error: boom\",\"reason\":{{\"errorType\":\"Error\",\
         \"errorMessage\":\"boom\"}},\"promise\":{{}},\"stack\":[\"Runtime.UnhandledPromiseRejection: Error: boom\"]}}"
    );
    let line = parse(&rejection);
    assert_eq!(fields(&line), (Level::Error, "Error: boom", Some("Runtime.UnhandledPromiseRejection")));
    assert_eq!(
        extra(&line),
        json!({"reason": {"errorType": "Error", "errorMessage": "boom"}, "promise": {}, "request_id": ID})
    );
}

#[test]
fn start_and_end_lines_are_info_with_the_request_id() {
    let line = parse(&format!("START RequestId: {ID} Version: $LATEST\n"));
    assert_eq!(fields(&line), (Level::Info, format!("START RequestId: {ID} Version: $LATEST").as_str(), None));
    assert_eq!(extra(&line), json!({"request_id": ID, "version": "$LATEST"}));
    let line = parse(&format!("END RequestId: {ID}\n"));
    assert_eq!((fields(&line).0, extra(&line)), (Level::Info, json!({"request_id": ID})));
}

#[test]
fn a_report_line_is_a_lambda_report_with_its_numbers_in_extra() {
    // As the platform writes it: tab-separated, with a trailing tab.
    let text = format!(
        "REPORT RequestId: {ID}\tDuration: 1532.27 ms\tBilled Duration: 1533 ms\tMemory Size: 128 MB\tMax Memory \
         Used: 71 MB\tInit Duration: 245.12 ms\t\n"
    );
    let line = parse(&text);
    assert_eq!(fields(&line), (Level::Info, text.trim_end(), Some(REPORT_TYPE)));
    assert_eq!(
        extra(&line),
        json!({"request_id": ID, "duration_ms": 1532.27, "billed_duration_ms": 1533, "memory_size_mb": 128,
               "max_memory_used_mb": 71, "init_duration_ms": 245.12})
    );
    // Space-separated, a warm start (no Init Duration), and a timeout's status.
    let text = format!(
        "REPORT RequestId: {ID} Duration: 3000.00 ms Billed Duration: 3000 ms Memory Size: 128 MB Max Memory Used: \
         64 MB Status: timeout"
    );
    assert_eq!(
        extra(&parse(&text)),
        json!({"request_id": ID, "duration_ms": 3000.0, "billed_duration_ms": 3000, "memory_size_mb": 128,
               "max_memory_used_mb": 64, "status": "timeout"})
    );
}

#[test]
fn a_timeout_line_is_an_error_with_the_request_id() {
    let line = parse(&format!("2026-11-24T15:02:06.459Z {ID} Task timed out after 3.00 seconds\n\n"));
    assert_eq!(fields(&line), (Level::Error, "Task timed out after 3.00 seconds", Some(TIMEOUT_TYPE)));
    assert_eq!(extra(&line), json!({"request_id": ID}));
}

#[test]
fn lambda_json_lines_give_level_message_and_request_id_and_keep_the_rest_in_extra() {
    let text = format!(
        r#"{{"timestamp":"2026-11-24T15:02:03Z","level":"WARN","message":"slow downstream","logger":"root","requestId":"{ID}","attempt":3}}"#
    );
    let line = parse(&text);
    assert_eq!(fields(&line), (Level::Warn, "slow downstream", None));
    assert_eq!(extra(&line), json!({"logger": "root", "attempt": 3, "request_id": ID}));
    // A level logboard does not know stays a field; the line is info.
    let line = parse(r#"{"level":"verbose","message":"m"}"#);
    assert_eq!((fields(&line), extra(&line)), ((Level::Info, "m", None), json!({"level": "verbose"})));
}

#[test]
fn lambda_json_errors_give_type_and_stack_from_python_and_node_shapes() {
    // Python: logger.exception in the JSON format; the author's message stays the message and
    // the exception's is kept beside it.
    let python = format!(
        r#"{{"timestamp":"2026-11-24T15:02:03Z","level":"ERROR","message":"payment failed","logger":"root","requestId":"{ID}","errorType":"KeyError","errorMessage":"'card'","stackTrace":["  File \"/var/task/app.py\", line 18, in handler\n    charge(order)\n"]}}"#
    );
    let line = parse(&python);
    assert_eq!(fields(&line), (Level::Error, "payment failed", Some("KeyError")));
    assert_eq!(line.stack.as_deref(), Some("  File \"/var/task/app.py\", line 18, in handler\n    charge(order)"));
    assert_eq!(extra(&line), json!({"logger": "root", "errorMessage": "'card'", "request_id": ID}));
    // Node.js: an error object as the message.
    let node = format!(
        r#"{{"timestamp":"2026-11-24T15:02:03.456Z","level":"ERROR","requestId":"{ID}","message":{{"errorType":"TypeError","errorMessage":"x is not a function","stackTrace":["TypeError: x is not a function","    at Runtime.handler (file:///var/task/index.mjs:2:3)"]}}}}"#
    );
    let line = parse(&node);
    assert_eq!(fields(&line), (Level::Error, "x is not a function", Some("TypeError")));
    assert_eq!(
        line.stack.as_deref(),
        Some("TypeError: x is not a function\n    at Runtime.handler (file:///var/task/index.mjs:2:3)")
    );
    assert_eq!(extra(&line), json!({"request_id": ID}));
}

#[test]
fn platform_json_lines_read_like_their_text_forms() {
    let report = format!(
        r#"{{"time":"2026-11-24T15:02:04.990Z","type":"platform.report","record":{{"requestId":"{ID}","metrics":{{"durationMs":1532.27,"billedDurationMs":1533,"memorySizeMB":128,"maxMemoryUsedMB":71,"initDurationMs":245.12}},"status":"success"}}}}"#
    );
    let line = parse(&report);
    assert_eq!(fields(&line), (Level::Info, format!("REPORT RequestId: {ID}").as_str(), Some(REPORT_TYPE)));
    assert_eq!(
        extra(&line),
        json!({"request_id": ID, "duration_ms": 1532.27, "billed_duration_ms": 1533, "memory_size_mb": 128,
               "max_memory_used_mb": 71, "init_duration_ms": 245.12, "status": "success"})
    );
    let start = format!(
        r#"{{"time":"2026-11-24T15:02:03.001Z","type":"platform.start","record":{{"requestId":"{ID}","version":"$LATEST"}}}}"#
    );
    let line = parse(&start);
    assert_eq!(fields(&line), (Level::Info, format!("START RequestId: {ID}").as_str(), None));
    assert_eq!(extra(&line), json!({"request_id": ID, "version": "$LATEST"}));
}

#[test]
fn anything_else_is_info_with_the_raw_line_as_message() {
    for text in [
        "INIT_START Runtime Version: python:3.12.v38\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:abc",
        "hello from print()",
        "error in prose is not a level",
        "[not a level] x",
        "[ERRORS]\tx",
        "2026-11-24T15:02:03.456Z\tabc\tLOUD\tnot a level",
        "2026-11-24T15:02:03.456Z abc something else",
        "START of something",
        "[1, 2, 3]",
        "{\"unterminated\":",
        "",
    ] {
        let line = parse(text);
        assert_eq!(fields(&line), (Level::Info, text, None), "{text:?}");
        assert_eq!((line.stack.as_deref(), extra(&line)), (None, json!({})), "{text:?}");
    }
}

/// Lines made of the pieces the parsers look for, in any order.
fn line_like() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "[ERROR]",
        "[INFO] ",
        "\t",
        " ",
        "\n",
        "2026-11-24T15:02:03.456Z",
        ID,
        "ERROR",
        "START",
        "REPORT",
        " RequestId:",
        "Duration: ",
        "1.5",
        " ms",
        " MB",
        "Traceback (most recent call last):",
        "KeyError: 'x'",
        "    at f (x.js:1:1)",
        "Invoke Error ",
        "{",
        "}",
        "\"errorType\":",
        "\"message\":",
        "Task timed out after ",
        "é",
        "",
    ]);
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn any_line_parses_and_a_request_id_is_one_token(text in line_like()) {
        let line = parse(&text);
        if let Some(id) = line.extra.get("request_id") {
            let id = id.as_str().unwrap_or_default();
            prop_assert!(!id.is_empty() && !id.contains(char::is_whitespace), "{:?} from {:?}", id, text);
        }
    }

    #[test]
    fn any_text_at_all_parses(text in any::<String>()) {
        let _ = parse(&text);
    }
}
