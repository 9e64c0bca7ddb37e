//! A small RFC 4180 reader for the exports the importer takes (`psql \copy ... csv header`,
//! Authelia's CSV): quoted fields with `""` escapes and line breaks inside quotes, CRLF or LF.
//! Each record remembers the line it starts on, for error reports. Fields are zeroized on drop:
//! some hold secrets.

use zeroize::Zeroizing;

/// One record: the line it starts on (1-based) and its fields.
pub(crate) struct Record {
    pub(crate) line: usize,
    pub(crate) fields: Vec<Zeroizing<String>>,
}

/// A record that cannot be read: where, and why (never the text).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub(crate) line: usize,
    pub(crate) reason: &'static str,
}

/// Reads every record; empty lines are skipped. A malformed quote stops the reading: nothing
/// after it can be trusted to be split right.
pub(crate) fn records(text: &str) -> Result<Vec<Record>, Malformed> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = Zeroizing::new(String::new());
        let mut quoted_field = false;
        loop {
            match chars.next() {
                None => {
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('"') if field.is_empty() && !quoted_field => {
                    quoted_field = true;
                    loop {
                        match chars.next() {
                            None => {
                                return Err(Malformed {
                                    line: start,
                                    reason: "a quoted field is not closed",
                                });
                            }
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            Some('"') => break,
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                field.push(c);
                            }
                        }
                    }
                    match chars.peek() {
                        None | Some(',' | '\n' | '\r') => {}
                        Some(_) => {
                            return Err(Malformed {
                                line: start,
                                reason: "text after a closing quote",
                            });
                        }
                    }
                }
                Some(',') => {
                    fields.push(std::mem::take(&mut field));
                    quoted_field = false;
                }
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some('\n') => {
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('"') => {
                    return Err(Malformed {
                        line: start,
                        reason: "a quote inside an unquoted field",
                    });
                }
                Some(c) => field.push(c),
            }
        }
        let blank = fields.len() == 1 && fields.first().is_some_and(|f| f.trim().is_empty()) && !quoted_field;
        if !blank {
            out.push(Record { line: start, fields });
        }
    }
    Ok(out)
}

/// A header's columns, looked up by name (case-insensitive, surrounding spaces ignored).
pub(crate) struct Header {
    names: Vec<String>,
}

impl Header {
    pub(crate) fn new(record: &Record) -> Self {
        Self {
            names: record.fields.iter().map(|f| f.trim().to_ascii_lowercase()).collect(),
        }
    }

    /// The index of `name`.
    pub(crate) fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;

    use super::*;

    fn fields(text: &str) -> Vec<(usize, Vec<String>)> {
        records(text)
            .unwrap()
            .into_iter()
            .map(|r| (r.line, r.fields.iter().map(|f| f.to_string()).collect()))
            .collect()
    }

    #[test]
    fn quoted_fields_escapes_and_line_numbers() {
        let text = "a,b,c\r\n\"x,1\",\"say \"\"hi\"\"\",\n\n\"multi\nline\",2,3\nlast,,\"\"";
        assert_eq!(
            fields(text),
            vec![
                (1, vec!["a".into(), "b".into(), "c".into()]),
                (2, vec!["x,1".into(), "say \"hi\"".into(), String::new()]),
                (4, vec!["multi\nline".into(), "2".into(), "3".into()]),
                (6, vec!["last".into(), String::new(), String::new()]),
            ]
        );
    }

    #[test]
    fn malformed_quotes_name_the_line() {
        assert_eq!(
            records("a\n\"open,b\n").err(),
            Some(Malformed {
                line: 2,
                reason: "a quoted field is not closed"
            })
        );
        assert_eq!(
            records("a\nb\n\"x\"y,1").err(),
            Some(Malformed {
                line: 3,
                reason: "text after a closing quote"
            })
        );
        assert_eq!(
            records("ab\"c").err(),
            Some(Malformed {
                line: 1,
                reason: "a quote inside an unquoted field"
            })
        );
    }

    fn write(rows: &[Vec<String>]) -> String {
        rows.iter()
            .map(|row| {
                row.iter()
                    .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    proptest! {
        /// What a CSV writer quotes, the reader gives back field for field.
        #[test]
        fn round_trips_a_writer(rows in proptest::collection::vec(proptest::collection::vec("[a-z,\"\n {}:]{0,12}", 1..5), 1..6)) {
            let got: Vec<Vec<String>> = fields(&write(&rows)).into_iter().map(|(_, f)| f).collect();
            prop_assert_eq!(got, rows);
        }

        #[test]
        fn never_panics(text in ".{0,300}") {
            let _ = records(&text);
        }
    }
}
