//! Tolerance for fastjson's bare integer object keys (protocol.md §8.3).

/// Quotes bare integer object keys outside strings: `{0:"a",-1:"b"}` becomes
/// `{"0":"a","-1":"b"}`.
///
/// A key is a run of ASCII digits (optionally preceded by `-`) that directly
/// follows `{` or `,` (whitespace allowed) and is followed by `:` (whitespace
/// allowed). Text inside string literals, including escaped quotes, is never
/// altered, and numbers in arrays or in value position are left alone.
///
/// The pass is linear in `body.len()`, never fails and never panics. It returns
/// `None` when there is nothing to quote (the caller keeps the original error);
/// otherwise the quoted copy, which is less than 5/3 × `body.len()` long (each
/// quoted key owns at least 3 input bytes, the `{` or `,` before it, a digit and
/// the `:`, and gains 2).
pub fn quote_bare_integer_keys(body: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    // Bytes of `body` already copied into `out`.
    let mut copied = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // The last significant byte seen outside strings.
    let mut prev = 0u8;
    let mut i = 0usize;
    while let Some(&b) = body.get(i) {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                prev = b'"';
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                i += 1;
            }
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'-' | b'0'..=b'9' if prev == b'{' || prev == b',' => {
                let start = i;
                let mut j = i;
                if b == b'-' {
                    j += 1;
                }
                let digits_start = j;
                while matches!(body.get(j), Some(b'0'..=b'9')) {
                    j += 1;
                }
                let end = j;
                while matches!(body.get(j), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                    j += 1;
                }
                if end > digits_start && body.get(j) == Some(&b':') {
                    let buf = out
                        .get_or_insert_with(|| Vec::with_capacity(body.len().saturating_add(16)));
                    buf.extend_from_slice(body.get(copied..start)?);
                    buf.push(b'"');
                    buf.extend_from_slice(body.get(start..end)?);
                    buf.push(b'"');
                    copied = end;
                }
                // A number token, key or not; the next significant byte decides the rest.
                prev = b'0';
                i = end.max(i + 1);
            }
            _ => {
                prev = b;
                i += 1;
            }
        }
    }
    let mut buf = out?;
    buf.extend_from_slice(body.get(copied..)?);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::quote_bare_integer_keys;

    fn quoted(s: &str) -> Option<String> {
        quote_bare_integer_keys(s.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn quotes_bare_keys() {
        assert_eq!(
            quoted(r#"{0:"a:1",1:"b:2"}"#).as_deref(),
            Some(r#"{"0":"a:1","1":"b:2"}"#)
        );
        assert_eq!(
            quoted(r#"{ 0 : "a" , -12 :"b"}"#).as_deref(),
            Some(r#"{ "0" : "a" , "-12" :"b"}"#)
        );
        assert_eq!(quoted("{\n0:\"a\"}").as_deref(), Some("{\n\"0\":\"a\"}"));
    }

    #[test]
    fn leaves_standard_json_alone() {
        assert_eq!(
            quoted(r#"{"0":"a","n":[1,2,3],"m":{"k":-1},"x":1.5e3}"#),
            None
        );
        assert_eq!(quoted(""), None);
        assert_eq!(quoted("[1,2]"), None);
    }

    #[test]
    fn leaves_strings_alone() {
        let s = r#"{"k":"{0:\"x\",1:2}","a":{0:"{1:2}"}}"#;
        assert_eq!(
            quoted(s).as_deref(),
            Some(r#"{"k":"{0:\"x\",1:2}","a":{"0":"{1:2}"}}"#)
        );
        // An escaped backslash before the closing quote ends the string.
        let s = r#"{"k":"\\",0:"v"}"#;
        assert_eq!(quoted(s).as_deref(), Some(r#"{"k":"\\","0":"v"}"#));
    }

    #[test]
    fn odd_input_does_not_panic() {
        for s in [
            "{",
            "{0",
            "{0:",
            "{-",
            "{-:",
            ",",
            "\"",
            "{\"\\",
            "{1 ",
            "{0:{0:{0:",
        ] {
            let _ = quoted(s);
        }
        assert_eq!(quoted("{0:").as_deref(), Some("{\"0\":"));
    }
}
