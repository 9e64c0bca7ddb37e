//! The YAML of an export, read into JSON values (with `yaml-rust2`'s event parser): plain
//! scalars typed as YAML 1.2's core schema types them, quoted ones as strings. Anchors and
//! aliases are refused (an export has none, and aliases are how a few bytes of YAML become
//! gigabytes), as are documents nested deeper than any export is.

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deepest nesting read.
const MAX_DEPTH: usize = 16;

/// A document read: its value, and the 1-based line each mapping of the sequences directly
/// under the top-level mapping starts on (one list per such sequence, in document order).
pub(super) struct Document {
    pub(super) value: Value,
    pub(super) item_lines: Vec<usize>,
}

enum Frame {
    Sequence(Vec<Value>),
    Mapping(Map<String, Value>, Option<String>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    done: Option<Value>,
    item_lines: Vec<usize>,
    error: Option<&'static str>,
}

impl Builder {
    fn push_value(&mut self, value: Value) {
        match self.stack.last_mut() {
            Some(Frame::Sequence(items)) => items.push(value),
            Some(Frame::Mapping(map, key)) => match key.take() {
                Some(k) => {
                    map.insert(k, value);
                }
                None => match value {
                    Value::String(k) => *key = Some(k),
                    _ => self.error = Some("a mapping key that is not a string"),
                },
            },
            None => self.done = Some(value),
        }
    }

    fn open(&mut self, frame: Frame, anchor: usize, mark: Marker) {
        if anchor != 0 {
            self.error = Some("anchors are not read");
            return;
        }
        if self.stack.len() >= MAX_DEPTH {
            self.error = Some("nested too deep");
            return;
        }
        // A mapping that is an item of a sequence directly under the top-level mapping.
        if matches!(frame, Frame::Mapping(..))
            && self.stack.len() == 2
            && matches!(self.stack.first(), Some(Frame::Mapping(..)))
            && matches!(self.stack.get(1), Some(Frame::Sequence(_)))
        {
            self.item_lines.push(mark.line());
        }
        self.stack.push(frame);
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match event {
            Event::Alias(_) => self.error = Some("aliases are not read"),
            Event::Scalar(text, style, anchor, _) => {
                if anchor != 0 {
                    self.error = Some("anchors are not read");
                    return;
                }
                let value = if style == TScalarStyle::Plain {
                    plain(text)
                } else {
                    Value::String(text)
                };
                self.push_value(value);
            }
            Event::SequenceStart(anchor, _) => self.open(Frame::Sequence(Vec::new()), anchor, mark),
            Event::MappingStart(anchor, _) => self.open(Frame::Mapping(Map::new(), None), anchor, mark),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Sequence(items)) => self.push_value(Value::Array(items)),
                Some(Frame::Mapping(map, None)) => self.push_value(Value::Object(map)),
                Some(Frame::Mapping(_, Some(_))) => self.error = Some("a mapping key without a value"),
                None => self.error = Some("an end without a start"),
            },
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {}
        }
    }
}

/// A plain scalar as the core schema types it: null, a boolean, an integer, or a string.
fn plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        t => match t.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::String(text),
        },
    }
}

/// Reads one YAML document.
///
/// # Errors
///
/// Why it is not a YAML document this reads (a syntax error with its line, an anchor or alias,
/// nesting deeper than 16).
pub(super) fn read(text: &str) -> Result<Document, String> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|e| format!("not YAML: {e}"))?;
    if let Some(why) = builder.error {
        return Err(format!("not an export this reads: {why}"));
    }
    Ok(Document {
        value: builder.done.unwrap_or(Value::Null),
        item_lines: builder.item_lines,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn an_export_reads_with_its_lines() {
        let doc = read("items:\n  - a: 1\n    b: 'x'\n  - a: true\n    b: ~\n").unwrap();
        assert_eq!(
            doc.value,
            serde_json::json!({"items": [{"a": 1, "b": "x"}, {"a": true, "b": null}]})
        );
        assert_eq!(doc.item_lines, [2, 4]);
    }

    #[test]
    fn aliases_anchors_and_depth_are_refused() {
        assert!(read("a: &x [1, 2]\nb: *x\n").is_err());
        assert!(read(&format!("{}1{}", "[".repeat(40), "]".repeat(40))).is_err());
        assert!(read("a: [1, 2\n").is_err());
        assert!(read("? [1]\n: 2\n").is_err());
    }
}
