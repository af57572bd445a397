//! `env_file`: `KEY=value` lines, as Docker and systemd users already write them.
//!
//! Deliberately small: no variable expansion, no escapes, no multi-line values. What is accepted
//! is taken literally, and what is not is refused with its line, so a secret never ends up
//! half-parsed.

/// A line of an env file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvLineError {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

/// Whether `name` may be an environment variable's name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses an env file: `KEY=value` lines; blank lines and lines starting with `#` are skipped;
/// a line may start with `export `; spaces around `=` are ignored; a value wholly in single or
/// double quotes loses them (nothing inside is interpreted). A key given twice: the last wins.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, Vec<EnvLineError>> {
    let mut vars = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(pair)) => vars.push(pair),
            Ok(None) => {}
            Err((byte, message)) => errors.push(EnvLineError {
                line: index + 1,
                column: line[..byte].chars().count() + 1,
                message,
            }),
        }
    }
    if errors.is_empty() {
        Ok(vars)
    } else {
        Err(errors)
    }
}

/// One line: `Ok(None)` for blanks and comments; an error carries the byte offset in the line.
fn parse_line(line: &str) -> Result<Option<(String, String)>, (usize, String)> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let mut start = line.len() - trimmed.len();
    if let Some(rest) = trimmed.strip_prefix("export")
        && rest.starts_with([' ', '\t'])
    {
        start = line.len() - rest.trim_start().len();
    }
    let body = &line[start..];
    let Some(eq) = body.find('=') else {
        return Err((
            start,
            "expected KEY=value (or a # comment); this line has no `=`".to_string(),
        ));
    };
    let key = body[..eq].trim_end();
    if !is_env_name(key) {
        return Err((
            start,
            format!(
                "`{key}` is not a valid variable name; use letters, digits and _, not starting with a digit"
            ),
        ));
    }
    let value_start = start + eq + 1;
    let raw_value = line[value_start..].trim();
    let value_at =
        value_start + (line[value_start..].len() - line[value_start..].trim_start().len());
    let value = match raw_value.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            if raw_value.len() >= 2 && raw_value.ends_with(quote) {
                &raw_value[1..raw_value.len() - 1]
            } else {
                return Err((
                    value_at,
                    format!(
                        "the value's opening {quote} has no closing {quote} at the end of the line"
                    ),
                ));
            }
        }
        _ => raw_value,
    };
    if value.contains('\0') {
        return Err((value_at, "the value contains a NUL character".to_string()));
    }
    Ok(Some((key.to_string(), value.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_the_accepted_forms() {
        let text = "# comment\n\nA=1\n  export B = two words \nC=\"quoted # not a comment\"\n\
                    D='single'\nE=\nF=a=b\n\t# indented comment\nexport_G=x\r\nH=\"\"\n";
        assert_eq!(
            parse_env_file(text),
            Ok(pairs(&[
                ("A", "1"),
                ("B", "two words"),
                ("C", "quoted # not a comment"),
                ("D", "single"),
                ("E", ""),
                ("F", "a=b"),
                ("export_G", "x"),
                ("H", ""),
            ]))
        );
    }

    #[test]
    fn reports_every_bad_line_with_its_position() {
        let text = "GOOD=1\nno equals sign\n1BAD=x\n  Q=\"open\nexport\n";
        let errors = parse_env_file(text).unwrap_err();
        let at: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(at, vec![(2, 1), (3, 1), (4, 5), (5, 1)]);
        assert!(errors[0].message.contains("KEY=value"));
        assert!(errors[1].message.contains("`1BAD`"));
        assert!(errors[2].message.contains("closing \""));
    }

    #[test]
    fn env_names() {
        assert!(is_env_name("PORT"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name(""));
        assert!(!is_env_name("1A"));
        assert!(!is_env_name("A-B"));
        assert!(!is_env_name("A B"));
    }
}
