//! Hydra's command-line override grammar, applied to the resolved config as a JSON tree.
//!
//! - `a.b=v`: set an existing key (an unknown key fails and lists the valid keys at that level);
//! - `+a.b=v`: add a key that is not there; `++a.b=v`: add or set;
//! - `~a.b`: remove a key (only optional fields may be absent afterwards);
//! - sweeps, with `-m`/`--multirun` only: `a=1,2,3`, `a=range(100,105)` (end excluded, optional
//!   step), `a=choice(x,y)`; every combination is one job, the last override varying fastest.
//!
//! Values are JSON (`3`, `1e-3`, `true`, `null`, `"text"`, `[1, 2]`), RON-style enums
//! (`Mse`, `Cosine(3e-5)`, `SpeedScaled(base: 0.3, gain: 0.2, min: 0.5, max: 2.0)`, `None`,
//! `Some(x)`), quoted strings (`'Austin,Monza'`), or bare words (strings and unit variants).
//! Reference: <https://hydra.cc/docs/advanced/override_grammar/basic/>.

use anyhow::{Result, anyhow, bail};
use serde_json::{Map, Value};

/// What an override does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `key=value`: the key must exist.
    Set,
    /// `+key=value`: the key must not exist.
    Add,
    /// `++key=value`: either.
    AddOrSet,
    /// `~key`: the key must exist.
    Remove,
}

/// One parsed override.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Operation.
    pub op: Op,
    /// Dotted key, split (`["training", "lr"]`).
    pub path: Vec<String>,
    /// New value (`None` for [`Op::Remove`]).
    pub value: Option<Value>,
    /// The text as given.
    pub text: String,
}

/// Splits `text` into `(op, key, value text)`.
fn split(text: &str) -> Result<(Op, &str, Option<&str>)> {
    let (op, rest) = if let Some(r) = text.strip_prefix("++") {
        (Op::AddOrSet, r)
    } else if let Some(r) = text.strip_prefix('+') {
        (Op::Add, r)
    } else if let Some(r) = text.strip_prefix('~') {
        (Op::Remove, r)
    } else {
        (Op::Set, text)
    };
    let (key, value) = match rest.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (rest, None),
    };
    let valid_key = !key.is_empty()
        && key.split('.').all(|seg| {
            !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if !valid_key {
        bail!("override `{text}`: `{key}` is not a key (expected a.b.c, letters, digits and _)");
    }
    match (op, value) {
        (Op::Remove, Some(_)) => bail!("override `{text}`: write `~{key}` without a value"),
        (Op::Remove, None) => {}
        (_, None) => bail!("override `{text}`: expected `{key}=VALUE`"),
        _ => {}
    }
    Ok((op, key, value))
}

/// Parses one override; sweep syntax is refused (it needs `--multirun`).
///
/// # Errors
/// A malformed key or value, or a sweep outside multirun, naming the override.
pub fn parse(text: &str) -> Result<Override> {
    let (op, key, value) = split(text)?;
    let value = match value {
        Some(v) => {
            if sweep_values(v)?.is_some() {
                bail!(
                    "override `{text}` is a sweep: add -m/--multirun to run one job per value, \
                     write a list as [a,b], or quote a string containing commas as '{v}'"
                );
            }
            Some(parse_value(v).map_err(|e| anyhow!("override `{text}`: {e}"))?)
        }
        None => None,
    };
    Ok(Override {
        op,
        path: key.split('.').map(String::from).collect(),
        value,
        text: text.to_string(),
    })
}

/// Applies `ov` to `tree`.
///
/// # Errors
/// A missing key (with the valid keys at that level), an existing key for `+`, or a key whose
/// parent is not a table.
pub fn apply(tree: &mut Value, ov: &Override) -> Result<()> {
    let (last, parents) = ov.path.split_last().expect("keys are non-empty");
    let mut node = tree;
    for (depth, seg) in parents.iter().enumerate() {
        let here = ov.path[..depth].join(".");
        let Value::Object(map) = node else {
            bail!("override `{}`: `{here}` is not a table", ov.text);
        };
        if !map.contains_key(seg) {
            if matches!(ov.op, Op::Add | Op::AddOrSet) {
                map.insert(seg.clone(), Value::Object(Map::new()));
            } else {
                bail!("{}", unknown_key(ov, &ov.path[..=depth], map));
            }
        }
        node = map.get_mut(seg).expect("present");
    }
    let Value::Object(map) = node else {
        bail!(
            "override `{}`: `{}` is not a table",
            ov.text,
            parents.join(".")
        );
    };
    match ov.op {
        Op::Set if !map.contains_key(last) => bail!("{}", unknown_key(ov, &ov.path, map)),
        Op::Add if map.contains_key(last) => bail!(
            "override `{}`: `{}` is already set (to {}); use `{}=…` to change it or `++` to add or set",
            ov.text,
            ov.path.join("."),
            map[last],
            ov.path.join(".")
        ),
        Op::Remove => {
            if map.remove(last).is_none() {
                bail!("{}", unknown_key(ov, &ov.path, map));
            }
        }
        _ => {
            map.insert(last.clone(), ov.value.clone().expect("a value"));
        }
    }
    Ok(())
}

fn unknown_key(ov: &Override, path: &[String], map: &Map<String, Value>) -> String {
    let level = path[..path.len() - 1].join(".");
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    format!(
        "override `{}`: unknown key `{}`; valid keys at {}: {} (use `+{}=…` to add a key)",
        ov.text,
        path.join("."),
        if level.is_empty() {
            "the top level".to_string()
        } else {
            format!("`{level}`")
        },
        keys.join(", "),
        ov.path.join(".")
    )
}

/// Expands sweeps into jobs: one list of plain overrides per combination, the last override
/// varying fastest (Hydra's basic sweeper). Without sweeps, one job with the overrides as given.
///
/// # Errors
/// Malformed overrides or sweep expressions.
pub fn expand_sweeps(overrides: &[String]) -> Result<Vec<Vec<String>>> {
    let mut jobs: Vec<Vec<String>> = vec![Vec::new()];
    for text in overrides {
        let (op, key, value) = split(text)?;
        let prefix = match op {
            Op::Set => "",
            Op::Add => "+",
            Op::AddOrSet => "++",
            Op::Remove => "~",
        };
        let choices = match value.map(sweep_values).transpose()?.flatten() {
            Some(values) => values
                .into_iter()
                .map(|v| format!("{prefix}{key}={v}"))
                .collect(),
            None => vec![text.clone()],
        };
        if jobs.len().saturating_mul(choices.len()) > MAX_JOBS {
            bail!(
                "the sweep has {} × {} jobs, more than {MAX_JOBS}; sweep fewer values",
                jobs.len(),
                choices.len()
            );
        }
        jobs = jobs
            .into_iter()
            .flat_map(|job| {
                choices.iter().map(move |c| {
                    let mut j = job.clone();
                    j.push(c.clone());
                    j
                })
            })
            .collect();
    }
    Ok(jobs)
}

/// The most jobs one sweep may expand to.
const MAX_JOBS: usize = 10_000;

/// The values of a sweep expression (`a,b`, `range(..)`, `choice(..)`), or `None` for a plain value.
fn sweep_values(v: &str) -> Result<Option<Vec<String>>> {
    let v = v.trim();
    for (name, is_range) in [("range(", true), ("choice(", false)] {
        if let Some(inner) = v.strip_prefix(name).and_then(|r| r.strip_suffix(')')) {
            let parts = top_level_split(inner, ',');
            if !is_range {
                if parts.iter().any(|p| p.trim().is_empty()) {
                    bail!("choice({inner}): every choice needs a value");
                }
                return Ok(Some(parts.iter().map(|p| p.trim().to_string()).collect()));
            }
            let nums: Vec<i64> = parts
                .iter()
                .map(|p| p.trim().parse::<i64>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| {
                    anyhow!("range({inner}): expected integers range(start, stop[, step])")
                })?;
            let (start, stop, step) = match nums[..] {
                [stop] => (0, stop, 1),
                [start, stop] => (start, stop, 1),
                [start, stop, step] if step != 0 => (start, stop, step),
                _ => bail!("range({inner}): expected range(start, stop[, step]) with step ≠ 0"),
            };
            let count = (stop - start).saturating_add(step - step.signum()) / step;
            if count > MAX_JOBS as i64 {
                bail!("range({inner}) has {count} values, more than {MAX_JOBS}");
            }
            let mut out = Vec::new();
            let mut x = start;
            while (step > 0 && x < stop) || (step < 0 && x > stop) {
                out.push(x.to_string());
                x += step;
            }
            if out.is_empty() {
                bail!("range({inner}) is empty");
            }
            return Ok(Some(out));
        }
    }
    let parts = top_level_split(v, ',');
    Ok((parts.len() > 1).then(|| parts.iter().map(|p| p.trim().to_string()).collect()))
}

/// Splits at `sep` outside brackets, parentheses, braces and quotes.
fn top_level_split(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None, 0);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, c) if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Parses a value: JSON, RON-style enums and structs, quoted or bare strings.
///
/// # Errors
/// Unbalanced or malformed RON-style values.
pub fn parse_value(text: &str) -> Result<Value> {
    let s = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(s) {
        return Ok(v);
    }
    if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        return Ok(Value::String(s[1..s.len() - 1].to_string()));
    }
    for quote in ['\'', '"'] {
        if s.starts_with(quote) != s.ends_with(quote) || s == quote.to_string() {
            bail!("`{s}`: unbalanced quote {quote}");
        }
    }
    if s == "None" || s == "()" {
        return Ok(Value::Null);
    }
    if s.starts_with('[') && s.ends_with(']') {
        let inner = &s[1..s.len() - 1];
        return Ok(Value::Array(
            top_level_split(inner, ',')
                .into_iter()
                .filter(|p| !p.trim().is_empty())
                .map(parse_value)
                .collect::<Result<_>>()?,
        ));
    }
    if let Some(open) = s.find('(') {
        let (name, rest) = s.split_at(open);
        let Some(inner) = rest[1..].strip_suffix(')') else {
            bail!("`{s}`: unbalanced parentheses");
        };
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bail!("`{s}`: `{name}` is not a name");
        }
        let body = parse_fields(inner)?;
        return Ok(match name {
            "" | "Some" => body,
            _ => Value::Object(Map::from_iter([(name.to_string(), body)])),
        });
    }
    Ok(Value::String(s.to_string()))
}

/// The inside of `Name(...)`: named fields → table, one value → that value, several → list.
fn parse_fields(inner: &str) -> Result<Value> {
    let parts: Vec<&str> = top_level_split(inner, ',')
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .collect();
    fn named(p: &str) -> Option<(&str, &str)> {
        top_level_split(p, ':')
            .len()
            .eq(&2)
            .then(|| p.split_once(':').expect("two parts"))
            .filter(|(k, _)| {
                let k = k.trim();
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
    }
    if !parts.is_empty() && parts.iter().all(|p| named(p).is_some()) {
        let mut map = Map::new();
        for p in parts {
            let (k, v) = named(p).expect("checked");
            map.insert(k.trim().to_string(), parse_value(v)?);
        }
        return Ok(Value::Object(map));
    }
    match parts.len() {
        0 => Ok(Value::Null),
        1 => parse_value(parts[0]),
        _ => Ok(Value::Array(
            parts.into_iter().map(parse_value).collect::<Result<_>>()?,
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tree() -> Value {
        json!({"training": {"lr": 0.001, "epochs": 5, "loss": "Mse", "betas": [0.9, 0.999]},
               "expert": {"speed": {"Fixed": 3.5}}})
    }

    fn run(tree: &mut Value, text: &str) -> Result<()> {
        apply(tree, &parse(text)?)
    }

    #[test]
    fn values_parse_as_json_ron_and_words() {
        assert_eq!(parse_value("3").unwrap(), json!(3));
        assert_eq!(parse_value("1e-3").unwrap(), json!(0.001));
        assert_eq!(parse_value("true").unwrap(), json!(true));
        assert_eq!(parse_value("null").unwrap(), json!(null));
        assert_eq!(parse_value("None").unwrap(), json!(null));
        assert_eq!(parse_value("Some(4)").unwrap(), json!(4));
        assert_eq!(parse_value("Austin").unwrap(), json!("Austin"));
        assert_eq!(
            parse_value("'Austin,Monza'").unwrap(),
            json!("Austin,Monza")
        );
        assert_eq!(
            parse_value("Cosine(3e-5)").unwrap(),
            json!({"Cosine": 3e-5})
        );
        assert_eq!(
            parse_value("SpeedScaled(base: 0.3, gain: 0.2)").unwrap(),
            json!({"SpeedScaled": {"base": 0.3, "gain": 0.2}})
        );
        assert_eq!(parse_value("(0.9, 0.99)").unwrap(), json!([0.9, 0.99]));
        assert_eq!(
            parse_value("[1, Huber(1.0)]").unwrap(),
            json!([1, {"Huber": 1.0}])
        );
        assert!(parse_value("Fixed(3.5").is_err());
    }

    #[test]
    fn set_add_and_remove() {
        let mut t = tree();
        run(&mut t, "training.lr=3e-4").unwrap();
        run(&mut t, "training.loss=Huber(1.0)").unwrap();
        run(&mut t, "expert.speed=Fixed(4)").unwrap();
        run(&mut t, "+training.note=first").unwrap();
        run(&mut t, "++training.epochs=7").unwrap();
        run(&mut t, "++training.extra.deep=1").unwrap();
        run(&mut t, "~training.betas").unwrap();
        assert_eq!(
            t["training"],
            json!({"lr": 3e-4, "epochs": 7, "loss": {"Huber": 1.0}, "note": "first", "extra": {"deep": 1}})
        );
        assert_eq!(t["expert"]["speed"], json!({"Fixed": 4}));
    }

    #[test]
    fn errors_name_the_override_and_the_valid_keys() {
        let mut t = tree();
        let e = run(&mut t, "training.lrr=1").unwrap_err().to_string();
        assert!(e.contains("unknown key `training.lrr`"), "{e}");
        assert!(
            e.contains("valid keys at `training`: lr, epochs, loss, betas")
                || e.contains("betas, epochs, loss, lr"),
            "{e}"
        );
        let e = run(&mut t, "trainin.lr=1").unwrap_err().to_string();
        assert!(e.contains("valid keys at the top level: "), "{e}");
        let e = run(&mut t, "+training.lr=1").unwrap_err().to_string();
        assert!(e.contains("already set"), "{e}");
        let e = run(&mut t, "~training.nothing").unwrap_err().to_string();
        assert!(e.contains("unknown key `training.nothing`"), "{e}");
        let e = run(&mut t, "training.lr.x=1").unwrap_err().to_string();
        assert!(e.contains("`training.lr` is not a table"), "{e}");
        for bad in [
            "=1",
            "training..lr=1",
            "training.lr",
            "~training.lr=1",
            "a b=1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let e = parse("training.seed=1,2").unwrap_err().to_string();
        assert!(e.contains("--multirun"), "{e}");
        assert_eq!(t, tree(), "failed overrides change nothing");
    }

    #[test]
    fn sweeps_expand_to_every_combination() {
        let jobs = expand_sweeps(&[
            "training.lr=1e-3,3e-4".into(),
            "training.seed=range(100,103)".into(),
            "model.outputs=1".into(),
        ])
        .unwrap();
        assert_eq!(jobs.len(), 6);
        assert_eq!(
            jobs[0],
            ["training.lr=1e-3", "training.seed=100", "model.outputs=1"]
        );
        assert_eq!(
            jobs[1],
            ["training.lr=1e-3", "training.seed=101", "model.outputs=1"]
        );
        assert_eq!(
            jobs[5],
            ["training.lr=3e-4", "training.seed=102", "model.outputs=1"]
        );
        let jobs = expand_sweeps(&["a=choice(x,'y,z')".into(), "+b=range(0,6,2)".into()]).unwrap();
        assert_eq!(jobs.len(), 6);
        assert_eq!(jobs[5], ["a='y,z'", "+b=4"]);
        assert_eq!(expand_sweeps(&["a=[1,2]".into()]).unwrap(), [["a=[1,2]"]]);
        assert!(expand_sweeps(&["a=range(5,5)".into()]).is_err());
        assert!(expand_sweeps(&["a=range(x)".into()]).is_err());
    }
}
