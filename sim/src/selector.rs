//! Kubernetes label and field selectors, as in `?labelSelector=` and `?fieldSelector=`, and the
//! structured `LabelSelector` of a GameServerAllocation.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Most requirements one selector may have. Kubernetes sets no number; every object a list,
/// watch or allocation looks at is checked against each requirement while the world is
/// locked, so an unbounded selector (a 400 KB query string, a 2 MiB allocation body) would
/// hold the lock for as long as its length allows.
pub const MAX_REQUIREMENTS: usize = 100;
/// Most values one `in`/`notin` set may have (looked up in a sorted set, not scanned).
pub const MAX_SET_VALUES: usize = 1000;

/// One requirement of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector(Vec<Req>);

impl Selector {
    /// Parses the string form: `a=b,c!=d,e in (f,g),h notin (i),j,!k`.
    pub fn parse(s: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        for term in split_terms(s)? {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_term(term)?);
            if reqs.len() > MAX_REQUIREMENTS {
                return Err(too_many_requirements());
            }
        }
        Ok(Selector(reqs))
    }

    /// Converts an API `LabelSelector` (matchLabels and matchExpressions).
    pub fn from_label_selector(ls: &LabelSelector) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        for (k, v) in ls.match_labels.iter().flatten() {
            reqs.push(Req::Eq(k.clone(), v.clone()));
        }
        for (i, e) in ls.match_expressions.iter().flatten().enumerate() {
            let values = e.values.as_deref().unwrap_or_default();
            if values.len() > MAX_SET_VALUES {
                return Err(format!(
                    "matchExpressions[{i}].values: {} values, more than the {MAX_SET_VALUES} allowed",
                    values.len()
                ));
            }
            let values: BTreeSet<String> = values.iter().cloned().collect();
            let req = match e.operator.as_str() {
                "In" => Req::In(e.key.clone(), values),
                "NotIn" => Req::NotIn(e.key.clone(), values),
                "Exists" => Req::Exists(e.key.clone()),
                "DoesNotExist" => Req::NotExists(e.key.clone()),
                other => {
                    return Err(format!(
                        "matchExpressions[{i}].operator: `{other}` is not In, NotIn, Exists or DoesNotExist"
                    ));
                }
            };
            reqs.push(req);
        }
        if reqs.len() > MAX_REQUIREMENTS {
            return Err(too_many_requirements());
        }
        Ok(Selector(reqs))
    }

    /// True when every requirement holds for `labels`.
    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k));
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v),
            Req::NotEq(k, v) => get(k) != Some(v),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.contains(x)),
            Req::NotIn(k, vs) => !get(k).is_some_and(|x| vs.contains(x)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }

    /// The value this selector pins `key` to with `=`, if any (used for index look-ups).
    pub fn equality(&self, key: &str) -> Option<&str> {
        self.0.iter().find_map(|r| match r {
            Req::Eq(k, v) if k == key => Some(v.as_str()),
            _ => None,
        })
    }
}

fn too_many_requirements() -> String {
    format!("more than {MAX_REQUIREMENTS} requirements")
}

/// Splits on commas outside parentheses.
fn split_terms(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced `)` at column {}", i + 1));
                }
            }
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced `(`".to_owned());
    }
    out.push(&s[start..]);
    Ok(out)
}

fn parse_term(t: &str) -> Result<Req, String> {
    if let Some(k) = t.strip_prefix('!') {
        return Ok(Req::NotExists(key(k)?));
    }
    if let Some((k, v)) = t.split_once("!=") {
        return Ok(Req::NotEq(key(k)?, value(v)?));
    }
    if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
        return Ok(Req::Eq(key(k)?, value(v)?));
    }
    let words: Vec<&str> = t.splitn(2, char::is_whitespace).collect();
    if let [k, rest] = words[..] {
        let rest = rest.trim_start();
        let (op, set) = if let Some(set) = rest.strip_prefix("notin") {
            ("notin", set)
        } else if let Some(set) = rest.strip_prefix("in") {
            ("in", set)
        } else {
            return Err(format!("`{t}`: expected `in` or `notin` after `{k}`"));
        };
        let set = set.trim();
        let inner = set
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .ok_or_else(|| format!("`{t}`: the set must be in parentheses"))?;
        if inner.split(',').nth(MAX_SET_VALUES).is_some() {
            return Err(format!(
                "`{k}`: more than {MAX_SET_VALUES} values in the set"
            ));
        }
        let values = inner
            .split(',')
            .map(value)
            .collect::<Result<BTreeSet<_>, _>>()?;
        return Ok(if op == "in" {
            Req::In(key(k)?, values)
        } else {
            Req::NotIn(key(k)?, values)
        });
    }
    Ok(Req::Exists(key(t)?))
}

fn key(k: &str) -> Result<String, String> {
    let k = k.trim();
    let ok = !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(k.to_owned())
    } else {
        Err(format!("`{k}` is not a valid label key"))
    }
}

fn value(v: &str) -> Result<String, String> {
    let v = v.trim();
    let ok = v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(format!("`{v}` is not a valid label value"))
    }
}

/// A field selector: `a=b,c!=d` over the fields a resource supports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `metadata.name=x,status.state!=Ready`; `allowed` lists the supported fields.
    pub fn parse(s: &str, allowed: &[&str]) -> Result<FieldSelector, String> {
        let mut out = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, eq, v) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (f, true, v)
            } else {
                return Err(format!("`{term}` is not `field=value` or `field!=value`"));
            };
            let field = field.trim();
            if !allowed.contains(&field) {
                return Err(format!(
                    "field label not supported: {field} (supported: {})",
                    allowed.join(", ")
                ));
            }
            out.push((field.to_owned(), eq, v.trim().to_owned()));
        }
        Ok(FieldSelector(out))
    }

    /// True when every term holds; `get` reads a field of the object.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|(f, eq, v)| {
            let actual = get(f).unwrap_or_default();
            (actual == *v) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn string_selectors_match_like_kubernetes() {
        let l = labels(&[("agones.dev/fleet", "f1"), ("tier", "gold")]);
        let cases = [
            ("", true),
            ("agones.dev/fleet=f1", true),
            ("agones.dev/fleet==f2", false),
            ("tier!=silver", true),
            ("tier in (gold, silver)", true),
            ("tier notin (gold)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing,agones.dev/fleet=f1", true),
            ("missing notin (x)", true),
        ];
        for (sel, want) in cases {
            let s = Selector::parse(sel).unwrap();
            assert_eq!(s.matches(Some(&l)), want, "{sel}");
        }
    }

    #[test]
    fn bad_selectors_are_rejected_with_a_reason() {
        for bad in [
            "tier in gold",
            "a=(b",
            "tier between (a)",
            "bad key!=x",
            "a=b c",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn field_selectors_only_accept_supported_fields() {
        let f = FieldSelector::parse(
            "metadata.name=a,status.state!=Ready",
            &["metadata.name", "status.state"],
        )
        .unwrap();
        assert!(f.matches(|k| {
            Some(
                if k == "metadata.name" {
                    "a"
                } else {
                    "Allocated"
                }
                .into(),
            )
        }));
        assert!(!f.matches(|k| Some(if k == "metadata.name" { "a" } else { "Ready" }.into())));
        let e = FieldSelector::parse("spec.x=1", &["metadata.name"]).unwrap_err();
        assert!(e.contains("field label not supported: spec.x"), "{e}");
    }
}
