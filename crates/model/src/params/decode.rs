//! [`Decode`]: JSON to schema types with every problem reported by field path, the
//! decoders of the JSON primitives and weighted lists, and the two macros that declare
//! the schema's string enums and objects (`string_enum!`, `schema_object!`).

use serde::de::{Deserialize, Deserializer, Error as _};
use serde_json::{Map, Value};

use crate::error::FieldError;

/// Decoding of a JSON value into a schema type, reporting every problem with
/// its field path instead of stopping at the first one.
pub(crate) trait Decode: Sized {
    /// What a value of this type looks like, for messages ("a number").
    const EXPECTED: &'static str;

    /// Decodes `value`; on failure pushes errors naming `path` (or a path below
    /// it) and returns `None`.
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self>;
}

/// `path.key`, or just `key` at the root.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn type_error(path: &str, expected: &str) -> FieldError {
    FieldError::new(path, format!("must be {expected}"))
}

/// Serde entry point for types that decode through [`Decode`]: the error text is
/// our `field: message` list, never a serde message naming Rust types.
pub(crate) fn deserialize_via_decode<'de, D: Deserializer<'de>, T: Decode>(d: D) -> Result<T, D::Error> {
    let value = Value::deserialize(d)?;
    let mut errors = Vec::new();
    match T::decode(&value, "", &mut errors) {
        Some(v) if errors.is_empty() => Ok(v),
        _ => Err(D::Error::custom(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))),
    }
}

impl Decode for bool {
    const EXPECTED: &'static str = "true or false";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        let v = value.as_bool();
        if v.is_none() {
            errors.push(type_error(path, Self::EXPECTED));
        }
        v
    }
}

impl Decode for f64 {
    const EXPECTED: &'static str = "a number";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        let v = value.as_f64();
        if v.is_none() {
            errors.push(type_error(path, Self::EXPECTED));
        }
        v
    }
}

impl Decode for i64 {
    const EXPECTED: &'static str = "an integer";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        let v = value.as_i64().or_else(|| {
            // 512.0 is an integer too; 512.5 and 1e300 are not.
            value.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)
        });
        if v.is_none() {
            errors.push(type_error(path, Self::EXPECTED));
        }
        v
    }
}

impl Decode for String {
    const EXPECTED: &'static str = "a string";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        let v = value.as_str().map(str::to_owned);
        if v.is_none() {
            errors.push(type_error(path, Self::EXPECTED));
        }
        v
    }
}

impl Decode for Map<String, Value> {
    const EXPECTED: &'static str = "an object";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        let v = value.as_object().cloned();
        if v.is_none() {
            errors.push(type_error(path, Self::EXPECTED));
        }
        v
    }
}

impl<T: Decode> Decode for Vec<T> {
    const EXPECTED: &'static str = "a list";
    fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        let Some(items) = value.as_array() else {
            errors.push(type_error(path, Self::EXPECTED));
            return None;
        };
        // Items that are the right shape but have a bad field inside (an object)
        // still count, so that validation can look at the rest of the list.
        let out: Vec<T> =
            items.iter().enumerate().filter_map(|(i, item)| T::decode(item, &format!("{path}[{i}]"), errors)).collect();
        (out.len() == items.len()).then_some(out)
    }
}

/// Decodes a `[first, weight]` pair of a weighted list.
pub(crate) fn decode_pair<T: Decode>(
    value: &Value,
    path: &str,
    what: &str,
    errors: &mut Vec<FieldError>,
) -> Option<(T, f64)> {
    let mut scratch = Vec::new();
    let pair = match value.as_array().map(Vec::as_slice) {
        Some([first, weight]) => T::decode(first, path, &mut scratch).zip(f64::decode(weight, path, &mut scratch)),
        _ => None,
    };
    if pair.is_none() {
        errors.push(FieldError::new(path, format!("must be a [{what}, weight] pair")));
    }
    pair
}

/// Decodes a weighted list `[[first, weight], ...]`.
pub(crate) fn decode_weighted<T: Decode>(
    items: &[Value],
    path: &str,
    what: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<(T, f64)>> {
    let out: Vec<(T, f64)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| decode_pair(item, &format!("{path}[{i}]"), what, errors))
        .collect();
    (out.len() == items.len()).then_some(out)
}

/// Declares a string enum of the schema: serde names, `ALL`, `as_str`, `parse`,
/// and decoding that lists the allowed values when given anything else.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in schema order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The JSON spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the JSON spelling.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Decode for $name {
            const EXPECTED: &'static str = "one of the allowed values";
            fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
                let v = value.as_str().and_then($name::parse);
                if v.is_none() {
                    let allowed: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    errors.push(FieldError::new(path, format!("must be one of: {}", allowed.join(", "))));
                }
                v
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_via_decode(d)
            }
        }
    };
}
pub(crate) use string_enum;

/// Declares a schema object: every field optional and skipped when absent,
/// unknown keys kept in `extra`, decoding through [`Decode`].
macro_rules! schema_object {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $key:literal => $field:ident : $ty:ty, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Serialize)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(rename = $key, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )+
            /// Fields this version does not know, kept and passed through untouched.
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }

        impl $name {
            /// The JSON keys this type knows (everything else lands in `extra`).
            pub const FIELDS: &'static [&'static str] = &[$($key),+];
        }

        impl Decode for $name {
            const EXPECTED: &'static str = "an object";
            fn decode(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
                let Some(map) = value.as_object() else {
                    errors.push(type_error(path, Self::EXPECTED));
                    return None;
                };
                let mut out = Self::default();
                for (key, v) in map {
                    match key.as_str() {
                        $( $key => out.$field = <$ty as Decode>::decode(v, &join(path, key), errors), )+
                        _ => {
                            out.extra.insert(key.clone(), v.clone());
                        }
                    }
                }
                Some(out)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_via_decode(d)
            }
        }
    };
}
pub(crate) use schema_object;
