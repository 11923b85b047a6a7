//! OpenTelemetry logs as OTLP/HTTP sends them to `POST /v1/logs` (protocols.md): an
//! `ExportLogsServiceRequest` in protobuf ([`decode_protobuf`], the generated messages of
//! `opentelemetry-proto`) or in OTLP/JSON ([`decode_json`], read by hand into the same messages:
//! 64-bit integers come as strings or numbers, ids as hex, `{}` as an empty value, unknown fields
//! are ignored). [`drafts`] then makes each `LogRecord` one draft, the way relay's
//! `otel_to_sentry_log` does: severity by ranges, body as the message, attributes into `extra`.
//!
//! Pure: no HTTP, no project. The ingest policy settles the drafts like any other.

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::attributes::{hex_id, insert_dotted};
use crate::event::{Draft, Level, Rejection, json_kind};

/// The body is not an export request: nothing of it is kept.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

/// A protobuf `ExportLogsServiceRequest`.
pub fn decode_protobuf(body: &[u8]) -> Result<ExportLogsServiceRequest, Malformed> {
    ExportLogsServiceRequest::decode(body).map_err(|e| Malformed(format!("not an OTLP protobuf logs request: {e}")))
}

/// An OTLP/JSON `ExportLogsServiceRequest`.
pub fn decode_json(body: &[u8]) -> Result<ExportLogsServiceRequest, Malformed> {
    let root: Value = serde_json::from_slice(body).map_err(|e| Malformed(format!("invalid JSON: {e}")))?;
    let root = object(&root, "the body")?;
    Ok(ExportLogsServiceRequest { resource_logs: list(root, "resourceLogs", "resourceLogs", resource_logs)? })
}

/// Every log record of the request as a draft, in order.
pub fn drafts(request: ExportLogsServiceRequest) -> Vec<Result<Draft, Rejection>> {
    let mut drafts = Vec::new();
    for resource_logs in request.resource_logs {
        let resource = ResourceFields::of(resource_logs.resource.unwrap_or_default());
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_logs.scope.map(|scope| scope.name).filter(|name| !name.is_empty());
            for record in scope_logs.log_records {
                drafts.push(Ok(record_draft(record, &resource, scope.as_deref())));
            }
        }
    }
    drafts
}

/// What a resource gives each of its records.
struct ResourceFields {
    attributes: Map<String, Value>,
    service: Option<Value>,
    release: Option<String>,
    env: Option<String>,
}

impl ResourceFields {
    fn of(resource: Resource) -> ResourceFields {
        let mut attributes = Map::new();
        let (mut service, mut release, mut env, mut old_env) = (None, None, None, None);
        for KeyValue { key, value } in resource.attributes {
            let value = any_json(value.unwrap_or_default());
            match key.as_str() {
                "service.name" => service = Some(value.clone()),
                "service.version" => release = value.as_str().map(str::to_string),
                "deployment.environment.name" => env = value.as_str().map(str::to_string),
                "deployment.environment" => old_env = value.as_str().map(str::to_string),
                _ => {}
            }
            insert_dotted(&mut attributes, &key, value);
        }
        ResourceFields { attributes, service, release, env: env.or(old_env) }
    }
}

fn record_draft(record: LogRecord, resource: &ResourceFields, scope: Option<&str>) -> Draft {
    let nanos = [record.time_unix_nano, record.observed_time_unix_nano].into_iter().find(|&n| n != 0);
    let timestamp = nanos.and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).ok());
    let mut extra = Map::new();
    let (mut exception_type, mut exception_message, mut stack) = (None, None, None);
    for KeyValue { key, value } in record.attributes {
        let value = any_json(value.unwrap_or_default());
        match key.as_str() {
            "exception.type" => exception_type = value.as_str().map(str::to_string),
            "exception.message" => exception_message = value.as_str().map(str::to_string),
            "exception.stacktrace" => stack = value.as_str().map(str::to_string),
            _ => {}
        }
        insert_dotted(&mut extra, &key, value);
    }
    let message = match record.body.and_then(|body| body.value) {
        Some(Any::StringValue(body)) => body,
        Some(body) => any_json(AnyValue { value: Some(body) }).to_string(),
        None => match (&exception_type, &exception_message) {
            (Some(kind), Some(message)) => format!("{kind}: {message}"),
            (Some(only), None) | (None, Some(only)) => only.clone(),
            (None, None) => String::new(),
        },
    };
    if !resource.attributes.is_empty() {
        extra.insert("resource".into(), Value::Object(resource.attributes.clone()));
    }
    if let Some(service) = &resource.service {
        extra.insert("service".into(), service.clone());
    }
    if let Some(scope) = scope {
        extra.insert("scope".into(), Value::String(scope.to_string()));
    }
    if !record.event_name.is_empty() {
        extra.insert("event_name".into(), Value::String(record.event_name));
    }
    for (field, id) in [("trace_id", &record.trace_id), ("span_id", &record.span_id)] {
        if let Some(hex) = hex_id(id) {
            extra.insert(field.into(), Value::String(hex));
        }
    }
    Draft {
        env: resource.env.clone(),
        timestamp,
        level: level(record.severity_number, &record.severity_text),
        message,
        kind: exception_type,
        stack,
        release: resource.release.clone(),
        extra,
        ..Draft::default()
    }
}

/// `severityNumber` by its ranges, else `severityText`, else info.
fn level(number: i32, text: &str) -> Level {
    match number {
        1..=8 => Level::Debug,
        9..=12 => Level::Info,
        13..=16 => Level::Warn,
        17..=20 => Level::Error,
        21..=24 => Level::Fatal,
        _ => text.parse().unwrap_or(Level::Info),
    }
}

/// An attribute or body value as JSON: a kvlist as an object, bytes as base64.
fn any_json(value: AnyValue) -> Value {
    match value.value {
        None => Value::Null,
        Some(Any::StringValue(text)) => Value::String(text),
        Some(Any::BoolValue(flag)) => Value::Bool(flag),
        Some(Any::IntValue(number)) => Value::from(number),
        Some(Any::DoubleValue(number)) => serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number),
        Some(Any::ArrayValue(array)) => Value::Array(array.values.into_iter().map(any_json).collect()),
        Some(Any::KvlistValue(list)) => {
            Value::Object(list.values.into_iter().map(|kv| (kv.key, any_json(kv.value.unwrap_or_default()))).collect())
        }
        Some(Any::BytesValue(bytes)) => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
    }
}

// --- OTLP/JSON into the protobuf messages ---------------------------------------------------------

type Fields = Map<String, Value>;

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Fields, Malformed> {
    value.as_object().ok_or_else(|| Malformed(format!("{at} must be an object, not {}", json_kind(value))))
}

/// A field by its lowerCamelCase name, or the proto name (`snake_case`) some encoders write.
fn field<'a>(fields: &'a Fields, camel: &str) -> Option<&'a Value> {
    fields.get(camel).or_else(|| fields.get(&snake_case(camel))).filter(|value| !value.is_null())
}

fn snake_case(camel: &str) -> String {
    let mut snake = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

/// A repeated field, each element read by `read` (with its path for errors).
fn list<T>(
    fields: &Fields,
    name: &str,
    at: &str,
    read: impl Fn(&Value, &str) -> Result<T, Malformed>,
) -> Result<Vec<T>, Malformed> {
    match field(fields, name) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            items.iter().enumerate().map(|(i, item)| read(item, &format!("{at}[{i}]"))).collect()
        }
        Some(other) => Err(Malformed(format!("{at} must be an array, not {}", json_kind(other)))),
    }
}

fn string(fields: &Fields, name: &str, at: &str) -> Result<String, Malformed> {
    match field(fields, name) {
        None => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(Malformed(format!("{at}.{name} must be a string, not {}", json_kind(other)))),
    }
}

/// A 64-bit integer: a number or a decimal string (the proto3 JSON form).
fn integer<T: TryFrom<i128> + Default>(fields: &Fields, name: &str, at: &str) -> Result<T, Malformed> {
    let Some(value) = field(fields, name) else { return Ok(T::default()) };
    let number = match value {
        Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        Value::String(text) => text.trim().parse::<i128>().ok(),
        _ => None,
    };
    number
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| Malformed(format!("{at}.{name} must be an integer (a number or a string), not {value}")))
}

/// An id in hex, upper or lower case (OTLP/JSON's exception to proto3's base64).
fn hex(fields: &Fields, name: &str, at: &str) -> Result<Vec<u8>, Malformed> {
    let text = string(fields, name, at)?;
    let bad = || Malformed(format!("{at}.{name} must be hex, not `{text}`"));
    if text.len() % 2 != 0 {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect()
}

fn resource_logs(value: &Value, at: &str) -> Result<ResourceLogs, Malformed> {
    let fields = object(value, at)?;
    let resource = match field(fields, "resource") {
        None => None,
        Some(resource) => {
            let here = format!("{at}.resource");
            let resource = object(resource, &here)?;
            Some(Resource {
                attributes: list(resource, "attributes", &format!("{here}.attributes"), key_value)?,
                dropped_attributes_count: integer(resource, "droppedAttributesCount", &here)?,
                entity_refs: Vec::new(),
            })
        }
    };
    Ok(ResourceLogs {
        resource,
        scope_logs: list(fields, "scopeLogs", &format!("{at}.scopeLogs"), scope_logs)?,
        schema_url: string(fields, "schemaUrl", at)?,
    })
}

fn scope_logs(value: &Value, at: &str) -> Result<ScopeLogs, Malformed> {
    let fields = object(value, at)?;
    let scope = match field(fields, "scope") {
        None => None,
        Some(scope) => {
            let here = format!("{at}.scope");
            let scope = object(scope, &here)?;
            Some(InstrumentationScope {
                name: string(scope, "name", &here)?,
                version: string(scope, "version", &here)?,
                attributes: list(scope, "attributes", &format!("{here}.attributes"), key_value)?,
                dropped_attributes_count: integer(scope, "droppedAttributesCount", &here)?,
            })
        }
    };
    Ok(ScopeLogs {
        scope,
        log_records: list(fields, "logRecords", &format!("{at}.logRecords"), log_record)?,
        schema_url: string(fields, "schemaUrl", at)?,
    })
}

fn log_record(value: &Value, at: &str) -> Result<LogRecord, Malformed> {
    let fields = object(value, at)?;
    let body = match field(fields, "body") {
        None => None,
        Some(body) => Some(any_value(body, &format!("{at}.body"))?),
    };
    Ok(LogRecord {
        time_unix_nano: integer(fields, "timeUnixNano", at)?,
        observed_time_unix_nano: integer(fields, "observedTimeUnixNano", at)?,
        severity_number: integer(fields, "severityNumber", at)?,
        severity_text: string(fields, "severityText", at)?,
        body,
        attributes: list(fields, "attributes", &format!("{at}.attributes"), key_value)?,
        dropped_attributes_count: integer(fields, "droppedAttributesCount", at)?,
        flags: integer(fields, "flags", at)?,
        trace_id: hex(fields, "traceId", at)?,
        span_id: hex(fields, "spanId", at)?,
        event_name: string(fields, "eventName", at)?,
    })
}

fn key_value(value: &Value, at: &str) -> Result<KeyValue, Malformed> {
    let fields = object(value, at)?;
    let value = match field(fields, "value") {
        None => None,
        Some(value) => Some(any_value(value, &format!("{at}.value"))?),
    };
    Ok(KeyValue { key: string(fields, "key", at)?, value })
}

/// `{"stringValue": ...}` and its siblings; `{}` is a value that is not set.
fn any_value(value: &Value, at: &str) -> Result<AnyValue, Malformed> {
    let fields = object(value, at)?;
    let wrong = |name: &str, want: &str| Malformed(format!("{at}.{name} must be {want}"));
    let value = if let Some(text) = field(fields, "stringValue") {
        Some(Any::StringValue(text.as_str().ok_or_else(|| wrong("stringValue", "a string"))?.to_string()))
    } else if let Some(flag) = field(fields, "boolValue") {
        Some(Any::BoolValue(flag.as_bool().ok_or_else(|| wrong("boolValue", "true or false"))?))
    } else if field(fields, "intValue").is_some() {
        Some(Any::IntValue(integer(fields, "intValue", at)?))
    } else if let Some(number) = field(fields, "doubleValue") {
        let number = match number {
            Value::Number(n) => n.as_f64(),
            Value::String(text) => text.parse().ok(),
            _ => None,
        };
        Some(Any::DoubleValue(number.ok_or_else(|| wrong("doubleValue", "a number"))?))
    } else if let Some(array) = field(fields, "arrayValue") {
        let here = format!("{at}.arrayValue");
        let values = list(object(array, &here)?, "values", &format!("{here}.values"), any_value)?;
        Some(Any::ArrayValue(ArrayValue { values }))
    } else if let Some(kvlist) = field(fields, "kvlistValue") {
        let here = format!("{at}.kvlistValue");
        let values = list(object(kvlist, &here)?, "values", &format!("{here}.values"), key_value)?;
        Some(Any::KvlistValue(KeyValueList { values }))
    } else if let Some(bytes) = field(fields, "bytesValue") {
        let text = bytes.as_str().ok_or_else(|| wrong("bytesValue", "base64"))?;
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| wrong("bytesValue", "base64"))?;
        Some(Any::BytesValue(bytes))
    } else {
        None
    };
    Ok(AnyValue { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from_json(body: Value) -> Vec<Draft> {
        let request = decode_json(body.to_string().as_bytes()).expect("request");
        drafts(request).into_iter().map(|draft| draft.expect("draft")).collect()
    }

    fn one_record(record: Value) -> Draft {
        let mut drafts = from_json(json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}));
        assert_eq!(drafts.len(), 1);
        drafts.remove(0)
    }

    #[test]
    fn a_record_takes_its_resource_scope_ids_and_attributes() {
        let drafts = from_json(json!({"resourceLogs": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "checkout"}},
                {"key": "service.version", "value": {"stringValue": "1.4.2"}},
                {"key": "deployment.environment", "value": {"stringValue": "old"}},
                {"key": "deployment.environment.name", "value": {"stringValue": "staging"}},
            ]},
            "scopeLogs": [{"scope": {"name": "shop.orders"}, "logRecords": [{
                "timeUnixNano": "1764000000123456789",
                "severityNumber": 17,
                "severityText": "ERROR",
                "body": {"stringValue": "payment failed"},
                "attributes": [
                    {"key": "http.request.method", "value": {"stringValue": "POST"}},
                    {"key": "retries", "value": {"intValue": "3"}},
                    {"key": "ratio", "value": {"doubleValue": 0.5}},
                    {"key": "ok", "value": {"boolValue": false}},
                    {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 2}]}}},
                    {"key": "ctx", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}},
                    {"key": "raw", "value": {"bytesValue": "AQI="}},
                    {"key": "empty", "value": {}},
                ],
                "traceId": "5B8EFFF798038103D269B633813FC60C",
                "spanId": "EEE19B7EC3C1B174",
            }]}],
        }]}));
        let draft = &drafts[0];
        assert_eq!(draft.message, "payment failed");
        assert_eq!(draft.level, Level::Error);
        assert_eq!(draft.env.as_deref(), Some("staging"));
        assert_eq!(draft.release.as_deref(), Some("1.4.2"));
        assert_eq!(draft.timestamp.map(|t| t.unix_timestamp_nanos()), Some(1_764_000_000_123_456_789));
        assert_eq!(
            Value::Object(draft.extra.clone()),
            json!({
                "http": {"request": {"method": "POST"}},
                "retries": 3, "ratio": 0.5, "ok": false, "tags": ["a", 2], "ctx": {"k": "v"},
                "raw": "AQI=", "empty": null,
                "resource": {"service": {"name": "checkout", "version": "1.4.2"},
                             "deployment": {"environment": "old", "environment.name": "staging"}},
                "service": "checkout",
                "scope": "shop.orders",
                "trace_id": "5b8efff798038103d269b633813fc60c",
                "span_id": "eee19b7ec3c1b174",
            })
        );
    }

    #[test]
    fn integers_come_as_strings_or_numbers_and_snake_case_names_are_read_too() {
        let as_number =
            one_record(json!({"timeUnixNano": 1_764_000_000_000_000_000_u64, "body": {"stringValue": "n"}}));
        let as_string = one_record(json!({"time_unix_nano": "1764000000000000000", "body": {"string_value": "n"}}));
        assert_eq!(as_number.timestamp, as_string.timestamp);
        assert!(as_number.timestamp.is_some());
        let observed = one_record(json!({"observedTimeUnixNano": "1764000000000000000", "body": {"stringValue": "o"}}));
        assert_eq!(observed.timestamp, as_number.timestamp, "the observed time stands in");
        assert_eq!(one_record(json!({"body": {"stringValue": "none"}})).timestamp, None, "the receive time then");
    }

    #[test]
    fn severity_numbers_go_by_range_then_the_text() {
        for (number, text, want) in [
            (1, "", Level::Debug),
            (5, "", Level::Debug),
            (9, "", Level::Info),
            (13, "", Level::Warn),
            (17, "", Level::Error),
            (21, "", Level::Fatal),
            (0, "WARNING", Level::Warn),
            (0, "", Level::Info),
            (0, "loud", Level::Info),
        ] {
            let draft =
                one_record(json!({"severityNumber": number, "severityText": text, "body": {"stringValue": "m"}}));
            assert_eq!(draft.level, want, "{number} {text}");
        }
    }

    #[test]
    fn a_non_string_body_is_compact_json_and_exception_attributes_give_type_message_and_stack() {
        let body = one_record(json!({"body": {"kvlistValue": {"values": [{"key": "a", "value": {"intValue": "1"}}]}}}));
        assert_eq!(body.message, r#"{"a":1}"#);
        let exception = one_record(json!({"severityNumber": 17, "attributes": [
            {"key": "exception.type", "value": {"stringValue": "ValueError"}},
            {"key": "exception.message", "value": {"stringValue": "bad order"}},
            {"key": "exception.stacktrace", "value": {"stringValue": "Traceback (most recent call last):\n  File \"app.py\", line 3, in pay"}},
        ]}));
        assert_eq!(exception.message, "ValueError: bad order");
        assert_eq!(exception.kind.as_deref(), Some("ValueError"));
        assert!(exception.stack.as_deref().is_some_and(|s| s.contains("app.py")));
        assert_eq!(exception.extra["exception"]["type"], "ValueError", "they stay in extra");
        let with_body = one_record(json!({"body": {"stringValue": "payment failed"}, "attributes": [
            {"key": "exception.type", "value": {"stringValue": "ValueError"}},
        ]}));
        assert_eq!((with_body.message.as_str(), with_body.kind.as_deref()), ("payment failed", Some("ValueError")));
        assert_eq!(one_record(json!({})).message, "", "the policy refuses it");
    }

    #[test]
    fn zero_ids_unknown_fields_and_empty_values_are_ignored() {
        let draft = one_record(json!({
            "traceId": "00000000000000000000000000000000", "spanId": "", "futureField": {"x": 1},
            "body": {"stringValue": "m"}, "attributes": [{"key": "k", "value": null}],
        }));
        assert_eq!(Value::Object(draft.extra), json!({"k": null}));
        assert!(from_json(json!({})).is_empty());
        assert!(from_json(json!({"resourceLogs": [{}]})).is_empty());
    }

    #[test]
    fn bad_data_says_where() {
        let error = |body: Value| decode_json(body.to_string().as_bytes()).map(|_| ()).unwrap_err().0;
        assert_eq!(error(json!([])), "the body must be an object, not an array");
        assert_eq!(error(json!({"resourceLogs": {}})), "resourceLogs must be an array, not an object");
        assert_eq!(
            error(json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]})),
            "resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano must be an integer (a number or a string), not \"soon\""
        );
        assert_eq!(
            error(json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "xyz1"}]}]}]})),
            "resourceLogs[0].scopeLogs[0].logRecords[0].traceId must be hex, not `xyz1`"
        );
        assert_eq!(
            error(json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": -1.5}]}]}]})),
            "resourceLogs[0].scopeLogs[0].logRecords[0].severityNumber must be an integer (a number or a string), not -1.5"
        );
        assert!(decode_json(b"{").unwrap_err().0.starts_with("invalid JSON"));
        assert!(decode_protobuf(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn protobuf_and_json_decode_to_the_same_records() {
        let json_body = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"timeUnixNano": "1764000000000000000", "severityNumber": 9, "body": {"stringValue": "hello"},
             "traceId": "5b8efff798038103d269b633813fc60c"}
        ]}]}]});
        let request = decode_json(json_body.to_string().as_bytes()).expect("json");
        let protobuf = decode_protobuf(&request.encode_to_vec()).expect("protobuf");
        assert_eq!(protobuf, request);
    }
}
