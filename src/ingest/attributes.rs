//! Attributes as OpenTelemetry and Sentry Logs send them (`code.file.path = "app.py"`), put into
//! `extra` the way a person searches them: a dotted name nests (`extra.code.file.path`).

use serde_json::{Map, Value};

/// Puts `value` under `name` in `map`, one level per dotted part. A part already holding
/// something else than an object (`a = 1`, then `a.b = 2`) keeps the rest of the name flat
/// (`a.b`) beside it, so no value is lost or overwritten.
pub fn insert_dotted(map: &mut Map<String, Value>, name: &str, value: Value) {
    let Some((head, rest)) = name.split_once('.').filter(|(head, rest)| !head.is_empty() && !rest.is_empty()) else {
        map.insert(name.to_string(), value);
        return;
    };
    match map.entry(head.to_string()).or_insert_with(|| Value::Object(Map::new())) {
        Value::Object(inner) => insert_dotted(inner, rest, value),
        _ => {
            map.insert(name.to_string(), value);
        }
    }
}

/// Lower-case hex of an id (trace and span ids), `None` when it is empty or all zeros (OTLP's
/// "no id").
pub fn hex_id(bytes: &[u8]) -> Option<String> {
    if bytes.iter().all(|&b| b == 0) {
        return None;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    Some(hex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_names_nest_and_a_clash_keeps_the_name_flat() {
        let mut map = Map::new();
        insert_dotted(&mut map, "code.file.path", json!("app.py"));
        insert_dotted(&mut map, "code.line.number", json!(12));
        insert_dotted(&mut map, "plain", json!(true));
        insert_dotted(&mut map, "plain.more", json!(1));
        insert_dotted(&mut map, ".odd.", json!("x"));
        assert_eq!(
            Value::Object(map),
            json!({
                "code": {"file": {"path": "app.py"}, "line": {"number": 12}},
                "plain": true,
                "plain.more": 1,
                ".odd.": "x",
            })
        );
    }

    #[test]
    fn ids_are_lower_case_hex_and_zero_ids_are_none() {
        assert_eq!(hex_id(&[0xAB, 0x01]).as_deref(), Some("ab01"));
        assert_eq!(hex_id(&[0; 16]), None);
        assert_eq!(hex_id(&[]), None);
        let all: Vec<u8> = (0..=255).collect();
        let want: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex_id(&all), Some(want), "every byte as two lower-case digits");
    }
}
