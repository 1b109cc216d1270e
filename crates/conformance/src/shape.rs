//! A small description of JSON shapes and the checker that lists where a value departs
//! from one: missing required fields, fields a closed object does not allow, wrong JSON
//! types, values outside an enum or a literal, tuples of the wrong length.
//!
//! ```
//! use dreamgate_conformance::shape::{check, closed, opt, req, Shape};
//! use serde_json::json;
//!
//! let shape = closed([req("id", Shape::String), opt("width", Shape::Integer)]);
//! let found = check(&shape, &json!({ "width": "512", "foo": 1 }));
//! let lines: Vec<String> = found.iter().map(|m| m.to_string()).collect();
//! assert_eq!(lines, [
//!     "$.id: missing (required)",
//!     "$.width: expected integer, got string",
//!     "$.foo: not allowed (closed object)",
//! ]);
//! ```

use std::fmt;

use serde_json::Value;

/// The shape of a JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Anything, `null` included.
    Any,
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// Any JSON number.
    Number,
    /// A number without a fractional part.
    Integer,
    /// Any string.
    String,
    /// A string out of a fixed list.
    Enum(&'static [&'static str]),
    /// Exactly this value.
    Literal(Value),
    /// An array whose items all have this shape.
    Array(Box<Shape>),
    /// An array of exactly these items, in order (e.g. a `[text, weight]` pair).
    Tuple(Vec<Shape>),
    /// An object with these fields; `closed` objects allow no other key.
    Object { fields: Vec<Field>, closed: bool },
    /// An object with any keys whose values all have this shape.
    Map(Box<Shape>),
    /// An object told apart by the string field `tag`: the variant named by its value applies.
    Tagged { tag: &'static str, variants: Vec<(&'static str, Shape)> },
    /// One of these shapes.
    OneOf(Vec<Shape>),
}

/// A field of an [`Shape::Object`].
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: &'static str,
    pub required: bool,
    pub shape: Shape,
}

/// A required field.
pub fn req(name: &'static str, shape: Shape) -> Field {
    Field { name, required: true, shape }
}

/// An optional field (absent is fine; present, it must have the shape).
pub fn opt(name: &'static str, shape: Shape) -> Field {
    Field { name, required: false, shape }
}

/// A closed object: only these fields.
pub fn closed(fields: impl IntoIterator<Item = Field>) -> Shape {
    Shape::Object { fields: fields.into_iter().collect(), closed: true }
}

/// An open object: these fields, others allowed.
pub fn open(fields: impl IntoIterator<Item = Field>) -> Shape {
    Shape::Object { fields: fields.into_iter().collect(), closed: false }
}

/// An array of `item`.
pub fn array(item: Shape) -> Shape {
    Shape::Array(Box::new(item))
}

/// `shape` or `null`.
pub fn nullable(shape: Shape) -> Shape {
    Shape::OneOf(vec![shape, Shape::Null])
}

/// How a value departs from its shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// A required field is absent.
    Missing,
    /// A closed object has a field it does not allow.
    Extra,
    /// The JSON type is not the expected one.
    WrongType { expected: String, found: &'static str },
    /// A string outside the enum.
    NotInEnum { found: String, allowed: Vec<&'static str> },
    /// Not the expected literal value.
    WrongValue { expected: String, found: String },
    /// A tuple with the wrong number of items.
    WrongLength { expected: usize, found: usize },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing => write!(f, "missing (required)"),
            Problem::Extra => write!(f, "not allowed (closed object)"),
            Problem::WrongType { expected, found } => write!(f, "expected {expected}, got {found}"),
            Problem::NotInEnum { found, allowed } => {
                write!(f, "{found:?} is not one of {}", allowed.join(", "))
            }
            Problem::WrongValue { expected, found } => write!(f, "expected {expected}, got {found}"),
            Problem::WrongLength { expected, found } => write!(f, "expected {expected} items, got {found}"),
        }
    }
}

/// One departure: where (a JSON path from `$`) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub path: String,
    pub problem: Problem,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// Every place where `value` departs from `shape`, in document order (empty: it conforms).
pub fn check(shape: &Shape, value: &Value) -> Vec<Mismatch> {
    let mut out = Vec::new();
    check_at(shape, value, "$", &mut out);
    out
}

/// The JSON type name of `value` (`integer` for numbers without a fraction).
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) if is_integer(value) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(value: &Value) -> bool {
    value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|x| x.is_finite() && x.fract() == 0.0)
}

/// What `shape` expects at its root, for messages.
fn expected_name(shape: &Shape) -> String {
    match shape {
        Shape::Any => "anything".into(),
        Shape::Null => "null".into(),
        Shape::Bool => "bool".into(),
        Shape::Number => "number".into(),
        Shape::Integer => "integer".into(),
        Shape::String | Shape::Enum(_) => "string".into(),
        Shape::Literal(v) => v.to_string(),
        Shape::Array(_) | Shape::Tuple(_) => "array".into(),
        Shape::Object { .. } | Shape::Map(_) | Shape::Tagged { .. } => "object".into(),
        Shape::OneOf(alts) => {
            let mut names: Vec<String> = alts.iter().map(expected_name).collect();
            names.dedup();
            names.join(" or ")
        }
    }
}

/// Whether `value` has the JSON type `shape` expects at its root (nested content aside).
fn root_matches(shape: &Shape, value: &Value) -> bool {
    match shape {
        Shape::Any => true,
        Shape::Null => value.is_null(),
        Shape::Bool => value.is_boolean(),
        Shape::Number => value.is_number(),
        Shape::Integer => is_integer(value),
        Shape::String | Shape::Enum(_) => value.is_string(),
        Shape::Literal(v) => v == value,
        Shape::Array(_) | Shape::Tuple(_) => value.is_array(),
        Shape::Object { .. } | Shape::Map(_) | Shape::Tagged { .. } => value.is_object(),
        Shape::OneOf(alts) => alts.iter().any(|a| root_matches(a, value)),
    }
}

fn push(out: &mut Vec<Mismatch>, path: &str, problem: Problem) {
    out.push(Mismatch { path: path.to_owned(), problem });
}

fn check_at(shape: &Shape, value: &Value, path: &str, out: &mut Vec<Mismatch>) {
    if let Shape::Literal(expected) = shape {
        if expected != value {
            push(out, path, Problem::WrongValue { expected: expected.to_string(), found: value.to_string() });
        }
        return;
    }
    if !root_matches(shape, value) {
        push(out, path, Problem::WrongType { expected: expected_name(shape), found: type_name(value) });
        return;
    }
    match (shape, value) {
        (Shape::Enum(allowed), Value::String(s)) if !allowed.contains(&s.as_str()) => {
            push(out, path, Problem::NotInEnum { found: s.clone(), allowed: allowed.to_vec() });
        }
        (Shape::Array(item), Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                check_at(item, v, &format!("{path}[{i}]"), out);
            }
        }
        (Shape::Tuple(items), Value::Array(values)) => {
            if items.len() != values.len() {
                push(out, path, Problem::WrongLength { expected: items.len(), found: values.len() });
                return;
            }
            for (i, (s, v)) in items.iter().zip(values).enumerate() {
                check_at(s, v, &format!("{path}[{i}]"), out);
            }
        }
        (Shape::Object { fields, closed }, Value::Object(map)) => {
            for field in fields {
                match map.get(field.name) {
                    Some(v) => check_at(&field.shape, v, &format!("{path}.{}", field.name), out),
                    None if field.required => push(out, &format!("{path}.{}", field.name), Problem::Missing),
                    None => {}
                }
            }
            if *closed {
                for key in map.keys().filter(|k| !fields.iter().any(|f| f.name == k.as_str())) {
                    push(out, &format!("{path}.{key}"), Problem::Extra);
                }
            }
        }
        (Shape::Map(item), Value::Object(map)) => {
            for (k, v) in map {
                check_at(item, v, &format!("{path}.{k}"), out);
            }
        }
        (Shape::Tagged { tag, variants }, Value::Object(map)) => {
            let at = format!("{path}.{tag}");
            let names: Vec<&'static str> = variants.iter().map(|(n, _)| *n).collect();
            match map.get(*tag) {
                None => push(out, &at, Problem::Missing),
                Some(Value::String(s)) => match variants.iter().find(|(n, _)| n == s) {
                    Some((_, variant)) => check_at(variant, value, path, out),
                    None => push(out, &at, Problem::NotInEnum { found: s.clone(), allowed: names }),
                },
                Some(other) => {
                    push(out, &at, Problem::WrongType { expected: "string".into(), found: type_name(other) })
                }
            }
        }
        (Shape::OneOf(alts), _) => {
            // The alternative (of those whose root type fits) with the fewest departures.
            let best = alts
                .iter()
                .filter(|a| root_matches(a, value))
                .map(|a| {
                    let mut found = Vec::new();
                    check_at(a, value, path, &mut found);
                    found
                })
                .min_by_key(Vec::len)
                .unwrap_or_default();
            out.extend(best);
        }
        _ => {}
    }
}
