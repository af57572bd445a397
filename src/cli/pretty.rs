//! JSON text indented as `serde_json::to_string_pretty` indents it, from compact JSON text:
//! `svc list --json` prints the units as svcd sent them without parsing them into structs and
//! serializing them again (at 1,000 units that was half of the client's 6.5 ms of CPU).

/// `compact` (valid JSON, as serde_json writes it: no space outside strings) indented by two
/// spaces per level, `": "` after a key, empty arrays and objects as `[]` and `{}`, exactly as
/// `serde_json::to_string_pretty` would write the same value.
pub fn indent(compact: &str) -> String {
    let bytes = compact.as_bytes();
    let mut out = String::with_capacity(compact.len() * 2);
    let mut level = 0usize;
    // Where the text between structural characters starts: copied whole, not byte by byte.
    let mut from = 0;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            b'"' => {
                // To the string's closing quote, jumping from one quote or backslash to the
                // next (an escaped character is skipped with its backslash).
                i += 1;
                while let Some(at) = bytes
                    .get(i..)
                    .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
                {
                    i += at;
                    if bytes[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
            }
            b'[' | b'{' => {
                out.push_str(&compact[from..=i]);
                let close = if byte == b'[' { b']' } else { b'}' };
                if bytes.get(i + 1) == Some(&close) {
                    // Empty: `[]`, `{}`.
                    out.push(close as char);
                    i += 1;
                } else {
                    level += 1;
                    newline(&mut out, level);
                }
                from = i + 1;
            }
            b']' | b'}' => {
                out.push_str(&compact[from..i]);
                level = level.saturating_sub(1);
                newline(&mut out, level);
                out.push(byte as char);
                from = i + 1;
            }
            b',' => {
                out.push_str(&compact[from..=i]);
                newline(&mut out, level);
                from = i + 1;
            }
            b':' => {
                out.push_str(&compact[from..=i]);
                out.push(' ');
                from = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(compact.get(from..).unwrap_or_default());
    out
}

/// A newline, then two spaces per `level`.
fn newline(out: &mut String, level: usize) {
    const SPACES: &str = "                                ";
    out.push('\n');
    let mut left = level * 2;
    while left > 0 {
        let n = left.min(SPACES.len());
        out.push_str(&SPACES[..n]);
        left -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same_as_serde(value: &serde_json::Value) {
        let compact = serde_json::to_string(value).expect("compact");
        let pretty = serde_json::to_string_pretty(value).expect("pretty");
        assert_eq!(indent(&compact), pretty, "{compact}");
    }

    #[test]
    fn indents_as_serde_json_does() {
        same_as_serde(&json!([]));
        same_as_serde(&json!({}));
        same_as_serde(&json!([1, 2.5, -3e-7, null, true, false, "x"]));
        same_as_serde(&json!([{
            "name": "chat",
            "pid": 812,
            "since_secs": 0.915630846,
            "memory": {"rss": 114688, "swap": 0, "mode": "cgroup"},
            "command": ["sh", "-c", "echo \"[a, b]: {c}\" \\\\ , x"],
            "logs": [],
            "schedule": {},
            "last_exit": null,
            "text": "tab\tnew\nline, ünïcödé: ✓ \u{1} {\"k\": [1,2]}",
            "nested": [[], [{}], [[1], {"a": [{"b": {}}]}]]
        }]));
    }

    #[test]
    fn text_that_is_not_json_does_not_panic() {
        for text in ["\"abc\\", "[\"", "}", "{\"a\":", "\\"] {
            let _ = indent(text);
        }
    }

    #[test]
    fn units_print_as_before() {
        let units: Vec<crate::control::UnitInfo> = serde_json::from_value(json!([{
            "name": "a", "state": "running", "ready": true, "pid": 7,
            "since": "2026-11-26T10:00:00.000Z", "restarts": 0, "last_exit": null,
            "memory": {"rss": 1, "swap": 0}, "cpu": 0.25, "reason": "started with svcd",
            "reason_kind": "boot", "enabled": true, "command": ["sleep", "1"],
            "starts": 1, "since_secs": 1.5, "logs": ["2026-11-26T10:00:00.000Z out hi, [x]"]
        }]))
        .expect("a unit");
        let compact = serde_json::to_string(&units).expect("compact");
        let before = serde_json::to_string_pretty(&units).expect("pretty");
        assert_eq!(indent(&compact), before);
    }
}
