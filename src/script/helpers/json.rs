//! `parse_json(text)` and `to_json(value)` / `to_json(value, pretty)`.
//!
//! JSON objects become maps, arrays arrays, numbers integers when they fit an `i64`
//! (floats otherwise), and `null` becomes `()`. The other way, only values JSON can hold
//! are accepted: a closure, a custom type, a NaN or an infinity is an error naming it,
//! rather than a string standing in for it. Blobs become arrays of bytes, characters
//! one-character strings.

use rhai::{Array, Blob, Dynamic, Engine, EvalAltResult, ImmutableString, Map, NativeCallContext};
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

type R<T> = Result<T, Box<EvalAltResult>>;

/// How deep `to_json` follows nested values before it gives up, so that a value built by
/// nesting in a loop cannot overflow the stack.
const MAX_DEPTH: usize = 512;

/// Registers the JSON helpers. They replace Rhai's built-in `parse_json`, and `to_json` is
/// also registered for maps so that it replaces the built-in `map.to_json()`, which writes
/// closures and custom types as strings.
pub(super) fn register(engine: &mut Engine) {
    engine.register_fn("parse_json", |text: &str| parse(text));
    engine.register_fn("to_json", |ctx: NativeCallContext, v: Dynamic| {
        to_json(ctx.engine(), &v, false)
    });
    engine.register_fn(
        "to_json",
        |ctx: NativeCallContext, v: Dynamic, pretty: bool| to_json(ctx.engine(), &v, pretty),
    );
    engine.register_fn("to_json", |ctx: NativeCallContext, m: Map| {
        to_json(ctx.engine(), &m.into(), false)
    });
}

fn parse(text: &str) -> R<Dynamic> {
    serde_json::from_str::<Dynamic>(text).map_err(|e| {
        let msg = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let msg = msg.strip_suffix(&suffix).unwrap_or(&msg);
        format!(
            "parse_json: invalid JSON at {}:{}: {msg}",
            e.line(),
            e.column()
        )
        .into()
    })
}

fn to_json(engine: &Engine, v: &Dynamic, pretty: bool) -> R<String> {
    let j = Json {
        v,
        engine,
        depth: 0,
    };
    let out = if pretty {
        serde_json::to_string_pretty(&j)
    } else {
        serde_json::to_string(&j)
    };
    out.map_err(|e| format!("to_json: {e}").into())
}

/// A value serialized as strict JSON.
struct Json<'a> {
    v: &'a Dynamic,
    engine: &'a Engine,
    depth: usize,
}

impl Json<'_> {
    fn nested<'b>(&'b self, v: &'b Dynamic) -> Json<'b> {
        Json {
            v,
            engine: self.engine,
            depth: self.depth + 1,
        }
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        if self.depth > MAX_DEPTH {
            return Err(S::Error::custom(format!(
                "the value is nested more than {MAX_DEPTH} levels deep"
            )));
        }
        let v = self.v;
        if v.is_shared() {
            let inner = v
                .read_lock::<Dynamic>()
                .ok_or_else(|| S::Error::custom("a shared value is locked by another thread"))?;
            return self.nested(&inner).serialize(ser);
        }
        if v.is_unit() {
            return ser.serialize_unit();
        }
        if let Ok(b) = v.as_bool() {
            return ser.serialize_bool(b);
        }
        if let Ok(i) = v.as_int() {
            return ser.serialize_i64(i);
        }
        if let Ok(f) = v.as_float() {
            if !f.is_finite() {
                return Err(S::Error::custom(format!(
                    "{f} cannot be represented in JSON"
                )));
            }
            return ser.serialize_f64(f);
        }
        if let Ok(c) = v.as_char() {
            return ser.serialize_char(c);
        }
        if let Some(s) = v.read_lock::<ImmutableString>() {
            return ser.serialize_str(&s);
        }
        if let Some(a) = v.read_lock::<Array>() {
            let mut seq = ser.serialize_seq(Some(a.len()))?;
            for item in a.iter() {
                seq.serialize_element(&self.nested(item))?;
            }
            return seq.end();
        }
        if let Some(m) = v.read_lock::<Map>() {
            let mut map = ser.serialize_map(Some(m.len()))?;
            for (k, item) in m.iter() {
                map.serialize_entry(k.as_str(), &self.nested(item))?;
            }
            return map.end();
        }
        if let Some(b) = v.read_lock::<Blob>() {
            return ser.collect_seq(b.iter());
        }
        let name = self.engine.map_type_name(v.type_name());
        let what = if v.is_fnptr() {
            "a function pointer or closure".to_string()
        } else {
            format!("a value of type {name}")
        };
        Err(S::Error::custom(format!(
            "{what} cannot be converted to JSON"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> String {
        to_json(&Engine::new(), &parse(text).unwrap(), false).unwrap()
    }

    #[test]
    fn json_round_trips() {
        let text = r#"{"a":[1,2.5,"x",null,true],"b":{"c":{}},"d":[],"e":-7}"#;
        assert_eq!(round_trip(text), text);
        assert_eq!(round_trip("null"), "null");
        assert_eq!(round_trip(r#""s\"q\n""#), r#""s\"q\n""#);
        // Too big for an i64: a float.
        assert_eq!(round_trip("18446744073709551615"), "1.8446744073709552e+19");
    }

    #[test]
    fn parsed_values_have_rhai_types() {
        let v = parse(r#"{"i":1,"f":1.5,"n":null,"a":[true]}"#).unwrap();
        let m = v.cast::<Map>();
        assert_eq!(m["i"].as_int(), Ok(1));
        assert_eq!(m["f"].as_float(), Ok(1.5));
        assert!(m["n"].is_unit());
        assert!(m["a"].is_array());
    }

    #[test]
    fn parse_errors_give_line_and_column() {
        let e = parse("{\n  \"a\": 1,\n  oops\n}").unwrap_err().to_string();
        assert!(
            e.contains("parse_json: invalid JSON at 3:3: key must be a string"),
            "{e}"
        );
        let e = parse("[1, 2").unwrap_err().to_string();
        assert!(
            e.contains("invalid JSON at 1:5: EOF while parsing a list"),
            "{e}"
        );
        assert!(parse("1 2").is_err());
    }

    #[test]
    fn pretty_output() {
        let v = parse(r#"{"a":[1]}"#).unwrap();
        let s = to_json(&Engine::new(), &v, true).unwrap();
        assert_eq!(s, "{\n  \"a\": [\n    1\n  ]\n}");
    }

    #[test]
    fn values_without_json_form_are_errors() {
        let engine = Engine::new();
        let f: Dynamic = engine.eval("|x| x + 1").unwrap();
        let mut m = Map::new();
        m.insert("f".into(), f);
        let e = to_json(&engine, &m.into(), false).unwrap_err().to_string();
        assert!(
            e.contains("to_json: a function pointer or closure cannot be"),
            "{e}"
        );

        #[derive(Clone)]
        struct Custom;
        let mut engine = Engine::new();
        engine.register_type_with_name::<Custom>("Custom");
        let e = to_json(&engine, &Dynamic::from(Custom), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a value of type Custom cannot be converted to JSON"),
            "{e}"
        );

        let e = to_json(&engine, &Dynamic::from(f64::NAN), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("NaN cannot be represented in JSON"), "{e}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut v = Dynamic::UNIT;
        for _ in 0..=MAX_DEPTH + 1 {
            v = Dynamic::from_array(vec![v]);
        }
        let e = to_json(&Engine::new(), &v, false).unwrap_err().to_string();
        assert!(e.contains("nested more than 512 levels deep"), "{e}");
    }

    #[test]
    fn chars_and_blobs() {
        let engine = Engine::new();
        assert_eq!(
            to_json(&engine, &Dynamic::from('x'), false).unwrap(),
            r#""x""#
        );
        let b: Blob = vec![1, 255];
        assert_eq!(
            to_json(&engine, &Dynamic::from_blob(b), false).unwrap(),
            "[1,255]"
        );
    }
}
