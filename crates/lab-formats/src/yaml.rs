//! YAML (MLflow's `meta.yaml`, Lightning's `hparams.yaml`, Hydra's
//! configs) into a JSON tree, bounded: the input is capped by the caller,
//! nesting and node count are capped here, the tree is built without
//! recursion, and aliases are refused rather than expanded (so a "billion
//! laughs" document costs what its text costs).

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 64;
/// Most nodes accepted in one document.
const MAX_NODES: usize = 200_000;

enum Open {
    Seq(Vec<Value>),
    Map(Map<String, Value>, Option<String>),
}

/// The first document of `text`, as JSON. Mapping keys that are not
/// scalars are refused; tags are ignored (a `!!python/…` tag is read as the
/// plain value it carries).
pub(crate) fn parse(text: &str) -> Result<Value, String> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut nodes = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| e.to_string())?;
        let value = match event {
            Event::StreamEnd => return Ok(Value::Null),
            Event::Nothing | Event::StreamStart | Event::DocumentStart => continue,
            Event::DocumentEnd => return Ok(Value::Null),
            Event::Alias(_) => {
                return Err(format!(
                    "line {}: YAML aliases are not followed",
                    mark.line()
                ));
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH} levels"));
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Open::Seq(Vec::new())
                } else {
                    Open::Map(Map::new(), None)
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Open::Seq(items)) => Value::Array(items),
                Some(Open::Map(map, _)) => Value::Object(map),
                None => return Err("unbalanced YAML".to_owned()),
            },
            Event::Scalar(text, style, _, _) => scalar(text, style),
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(format!("more than {MAX_NODES} nodes"));
        }
        match stack.last_mut() {
            None => return Ok(value),
            Some(Open::Seq(items)) => items.push(value),
            Some(Open::Map(map, key)) => match key.take() {
                None => match value {
                    Value::String(k) => *key = Some(k),
                    Value::Null => *key = Some("null".to_owned()),
                    Value::Bool(b) => *key = Some(b.to_string()),
                    Value::Number(n) => *key = Some(n.to_string()),
                    _ => {
                        return Err(format!(
                            "line {}: a mapping key is not a scalar",
                            mark.line()
                        ));
                    }
                },
                Some(k) => {
                    map.insert(k, value);
                }
            },
        }
    }
}

/// A scalar resolved as YAML 1.2's core schema does.
fn scalar(text: String, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(n) = text.parse::<i64>() {
        return Value::from(n);
    }
    let numeric = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if numeric
        && text.bytes().any(|b| b.is_ascii_digit())
        && let Some(n) = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
    {
        return Value::Number(n);
    }
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_parse_into_json() {
        let v = parse("a: 1\nb:\n  c: [x, 2.5, true, null]\n'q': \"s\"\n").unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 1, "b": {"c": ["x", 2.5, true, null]}, "q": "s"})
        );
        assert_eq!(parse("- key=value\n- b=2\n").unwrap()[1], "b=2");
        let tagged = parse("lr: !!float 1e-3\nopt: !!python/name:torch.optim.Adam ''\n").unwrap();
        assert_eq!(tagged["lr"], 0.001);
    }

    #[test]
    fn bombs_and_deep_nesting_are_refused() {
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
        assert!(parse(bomb).unwrap_err().contains("aliases"));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse(&deep).unwrap_err();
        assert!(err.contains("deeper") || err.contains("recursion"), "{err}");
        assert!(parse("a: [unclosed").is_err());
        assert!(parse("? [a]\n: b\n").unwrap_err().contains("not a scalar"));
    }
}
