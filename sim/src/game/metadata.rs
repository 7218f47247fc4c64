//! The API server's limits on the labels and annotations a game sets through its SDK
//! (`LABEL`, `ANNOTATION`): a key, value or total it would refuse is refused here, before the
//! GameServer changes.
//!
//! In Agones the SDK call itself succeeds and queues the change; the sidecar's update of the
//! GameServer is then refused by the API server and the label never appears (Agones
//! `pkg/sdkserver/sdkserver.go`, `SetLabel`, `SetAnnotation`, `updateLabels`,
//! `updateAnnotations`). The simulator answers the refusal at once, as an `ERROR: …` reply, so a
//! client sees why; either way the object stays as it was.

use std::collections::BTreeMap;

/// The prefix the SDK puts before every key (Agones `pkg/sdkserver/sdkserver.go`,
/// `metadataPrefix`).
pub const SDK_PREFIX: &str = "agones.dev/sdk-";

/// A qualified name's name part, and a label value, at most (Kubernetes
/// `staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go`,
/// `qualifiedNameMaxLength`, `LabelValueMaxLength`).
pub const NAME_MAX: usize = 63;

/// All annotations of one object together, keys and values, at most (Kubernetes
/// `staging/src/k8s.io/apimachinery/pkg/api/validation/objectmeta.go`,
/// `TotalAnnotationSizeLimitB`, checked by `ValidateAnnotationsSize`).
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

/// Labels, and annotations, one GameServer holds at most. Kubernetes sets no count, only the
/// object's size: etcd refuses a write over 1.5 MiB (`--max-request-bytes`). A label is at most
/// about 140 bytes (an 11-byte prefix, a 63-byte name and a 63-byte value), so 1 024 of them
/// are about 140 KiB, which with 256 KiB of annotations keeps the object well inside that limit
/// and each watch snapshot of it small; a game sets a handful. Replacing a key's value is always
/// allowed.
pub const MAX_KEYS: usize = 1024;

/// Which map an SDK call writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    Label,
    Annotation,
}

impl Meta {
    fn noun(self) -> &'static str {
        match self {
            Meta::Label => "label",
            Meta::Annotation => "annotation",
        }
    }
}

/// Checks that setting `key` (without [`SDK_PREFIX`]) to `value` in `current` (the GameServer's
/// labels or annotations) leaves an object the API server accepts; the error says which limit,
/// in the API server's words where it has them.
pub fn check(
    meta: Meta,
    key: &str,
    value: &str,
    current: Option<&BTreeMap<String, String>>,
) -> Result<(), String> {
    let full = format!("{SDK_PREFIX}{key}");
    let noun = meta.noun();
    // `ValidateLabels` / `ValidateAnnotations`: the key is a qualified name (`IsQualifiedName`);
    // the prefix `agones.dev` is a valid DNS subdomain, so only the name part can fail.
    let name = full.split_once('/').map_or(full.as_str(), |(_, n)| n);
    if name.len() > NAME_MAX {
        return Err(format!(
            "{noun} key {full:?}: name part must be no more than {NAME_MAX} characters"
        ));
    }
    if !is_name(name) {
        return Err(format!(
            "{noun} key {full:?}: name part must consist of alphanumeric characters, '-', '_' \
             or '.', and must start and end with an alphanumeric character"
        ));
    }
    let map_len = current.map_or(0, BTreeMap::len);
    let replaces = current.is_some_and(|m| m.contains_key(&full));
    if !replaces && map_len >= MAX_KEYS {
        return Err(format!(
            "{noun} key {full:?}: the GameServer already has {map_len} {noun}s, the most the \
             simulator keeps ({MAX_KEYS})"
        ));
    }
    match meta {
        Meta::Label => {
            // `IsValidLabelValue`: empty, or a name of at most 63 characters.
            if value.len() > NAME_MAX {
                return Err(format!(
                    "label {full:?}: value must be no more than {NAME_MAX} characters, got {}",
                    value.len()
                ));
            }
            if !value.is_empty() && !is_name(value) {
                return Err(format!(
                    "label {full:?}: a valid label value must be an empty string or consist of \
                     alphanumeric characters, '-', '_' or '.', and must start and end with an \
                     alphanumeric character"
                ));
            }
        }
        Meta::Annotation => {
            // `ValidateAnnotationsSize`: the sum of every key's and value's length.
            let others: usize = current.map_or(0, |m| {
                m.iter()
                    .filter(|(k, _)| **k != full)
                    .map(|(k, v)| k.len() + v.len())
                    .sum()
            });
            let total = others + full.len() + value.len();
            if total > ANNOTATIONS_MAX_BYTES {
                return Err(format!(
                    "annotation {full:?}: annotations would be {total} bytes, must have at most \
                     {ANNOTATIONS_MAX_BYTES} bytes"
                ));
            }
        }
    }
    Ok(())
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, non-empty (Kubernetes `validation.go`,
/// `qualifiedNameFmt`, which label values share).
fn is_name(s: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            alnum(first)
                && alnum(last)
                && bytes
                    .iter()
                    .all(|b| alnum(b) || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn keys_and_label_values_follow_the_api_servers_rules() {
        assert_eq!(check(Meta::Label, "k", "v-1.x_y", None), Ok(()));
        assert_eq!(check(Meta::Label, "k", "", None), Ok(()));
        // "sdk-" plus 59 characters is the longest name part.
        let longest = "k".repeat(NAME_MAX - 4);
        assert_eq!(check(Meta::Label, &longest, "v", None), Ok(()));
        let e = check(Meta::Label, &format!("{longest}k"), "v", None).unwrap_err();
        assert!(e.contains("no more than 63 characters"), "{e}");
        let e = check(Meta::Annotation, "a/b", "v", None).unwrap_err();
        assert!(e.contains("must start and end with an alphanumeric"), "{e}");
        assert!(check(Meta::Label, "k-", "v", None).is_err());
        assert_eq!(check(Meta::Label, "k", &"v".repeat(63), None), Ok(()));
        let e = check(Meta::Label, "k", &"v".repeat(64), None).unwrap_err();
        assert!(
            e.contains("value must be no more than 63 characters, got 64"),
            "{e}"
        );
        assert!(check(Meta::Label, "k", "-v", None).is_err());
        assert!(check(Meta::Label, "k", "a b", None).is_err());
        // Annotation values are free text.
        assert_eq!(check(Meta::Annotation, "k", "a b -", None), Ok(()));
    }

    #[test]
    fn annotations_are_bounded_in_total_and_a_replacement_counts_once() {
        let big = "v".repeat(ANNOTATIONS_MAX_BYTES - 100);
        let current = map(&[("agones.dev/sdk-a", &big)]);
        // 16 + (max - 100) + 16 + 68 = max.
        let fits = "w".repeat(68);
        assert_eq!(check(Meta::Annotation, "b", &fits, Some(&current)), Ok(()));
        let e = check(Meta::Annotation, "b", &format!("{fits}w"), Some(&current)).unwrap_err();
        assert!(
            e.contains(&format!(
                "{} bytes, must have at most",
                ANNOTATIONS_MAX_BYTES + 1
            )),
            "{e}"
        );
        // Replacing `a` does not count its old value.
        let same = "x".repeat(ANNOTATIONS_MAX_BYTES - 16);
        assert_eq!(check(Meta::Annotation, "a", &same, Some(&current)), Ok(()));
    }

    #[test]
    fn the_number_of_keys_is_capped_but_a_kept_key_may_change() {
        let full: BTreeMap<String, String> = (0..MAX_KEYS)
            .map(|i| (format!("{SDK_PREFIX}k{i}"), "v".to_owned()))
            .collect();
        let e = check(Meta::Label, "new", "v", Some(&full)).unwrap_err();
        assert!(e.contains("already has 1024 labels"), "{e}");
        assert_eq!(check(Meta::Label, "k7", "w", Some(&full)), Ok(()));
    }
}
