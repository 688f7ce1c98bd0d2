//! A small checker for the subset of JSON Schema that
//! bench/schema/tg-bench.schema.json uses: `type` (one or a list),
//! `required`, `properties`, `items`, `minItems`, `maxItems`, `minimum`,
//! `const`, `oneOf` and `$ref` to `#/$defs/NAME`. Anything else in the
//! schema is refused, so the file cannot silently say more than is checked.

use serde_json::Value;

const KNOWN: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "$ref",
    "title",
    "description",
    "type",
    "required",
    "properties",
    "items",
    "minItems",
    "maxItems",
    "minimum",
    "const",
    "oneOf",
];

/// The checked-in schema.
pub fn tg_bench_schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/tg-bench.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every place where `doc` breaks `schema`, as `PATH: problem`.
pub fn check(schema: &Value, doc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    at(schema, schema, doc, "$", &mut errors);
    errors
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_u64() || v.is_i64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("schema: unknown type {other:?}"),
    }
}

fn at(root: &Value, s: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let s = s.as_object().expect("schema nodes are objects");
    for k in s.keys() {
        assert!(
            KNOWN.contains(&k.as_str()),
            "schema keyword {k:?} at {path} is not checked"
        );
    }
    if let Some(r) = s.get("$ref") {
        let name = r
            .as_str()
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .expect("only #/$defs/NAME refs");
        at(root, &root["$defs"][name], v, path, errors);
    }
    if let Some(alts) = s.get("oneOf") {
        let passing = alts
            .as_array()
            .unwrap()
            .iter()
            .filter(|alt| {
                let mut e = Vec::new();
                at(root, alt, v, path, &mut e);
                e.is_empty()
            })
            .count();
        if passing != 1 {
            // Say why against the alternative whose `kind` matches, if any.
            let mut why = Vec::new();
            for alt in alts.as_array().unwrap() {
                let mut e = Vec::new();
                at(root, alt, v, path, &mut e);
                if !e.iter().any(|m| m.contains(".kind:")) {
                    why = e;
                }
            }
            errors.push(format!(
                "{path}: matches {passing} of the oneOf alternatives, not 1"
            ));
            errors.extend(why);
        }
    }
    if let Some(c) = s.get("const") {
        if v != c {
            errors.push(format!("{path}: {v} is not {c}"));
        }
    }
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => type_ok(t, v),
            Value::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap(), v)),
            _ => panic!("schema: bad type at {path}"),
        };
        if !ok {
            errors.push(format!("{path}: {v} is not of type {t}"));
            return;
        }
    }
    if let (Some(min), Some(x)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if x < min {
            errors.push(format!("{path}: {x} is below the minimum {min}"));
        }
    }
    if let Some(o) = v.as_object() {
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !o.contains_key(r) {
                errors.push(format!("{path}: required key {r:?} is missing"));
            }
        }
        for (k, sub) in s
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(x) = o.get(k) {
                at(root, sub, x, &format!("{path}.{k}"), errors);
            }
        }
    }
    if let Some(a) = v.as_array() {
        if let Some(n) = s.get("minItems").and_then(Value::as_u64) {
            if (a.len() as u64) < n {
                errors.push(format!("{path}: {} items, fewer than {n}", a.len()));
            }
        }
        if let Some(n) = s.get("maxItems").and_then(Value::as_u64) {
            if (a.len() as u64) > n {
                errors.push(format!("{path}: {} items, more than {n}", a.len()));
            }
        }
        if let Some(items) = s.get("items") {
            for (i, x) in a.iter().enumerate() {
                at(root, items, x, &format!("{path}[{i}]"), errors);
            }
        }
    }
}
