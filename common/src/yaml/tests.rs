use super::*;

/// The wide bomb of the review (`attack-2/cfg/alias_wide.yaml`): 10 KB, 400 million nodes.
fn alias_wide() -> String {
    let list = |item: &str, n: usize| vec![item; n].join(",");
    format!(
        "a: &a [{}]\nb: &b [{}]\nc: [{}]\n",
        list("x", 2000),
        list("*a", 2000),
        list("*b", 100)
    )
}

/// The classic billion laughs (`attack-2/cfg/billion_laughs.yaml`), 533 bytes.
fn billion_laughs() -> String {
    let mut s = "a0: &a0 [lol]\n".to_owned();
    for i in 1..=12 {
        let prev = format!("*a{}", i - 1);
        s += &format!("a{i}: &a{i} [{}]\n", [prev.as_str(); 9].join(","));
    }
    s
}

/// `{a: ` nested `n` deep (`attack-2/cfg/dm*.yaml`).
fn flow_nesting(n: usize) -> String {
    "{a: ".repeat(n) + "x" + &"}".repeat(n)
}

#[test]
fn the_wide_alias_bomb_is_refused_for_its_expansion_with_the_origin_and_limit() {
    let e = check(&alias_wide(), "bomb.yaml").unwrap_err();
    assert_eq!(e.origin, "bomb.yaml");
    assert!(e.message.contains(&MAX_EXPANDED.to_string()), "{e}");
    assert!(e.to_string().starts_with("bomb.yaml:"), "{e}");
}

#[test]
fn billion_laughs_is_refused_for_its_expansion() {
    let e = check(&billion_laughs(), "laughs.yaml").unwrap_err();
    assert!(e.message.contains("expands"), "{e}");
    assert!(e.line.is_some_and(|l| l > 1), "{e:?}");
}

#[test]
fn deep_flow_nesting_is_refused_by_the_pre_scan_at_its_line() {
    let e = check(&format!("# header\n{}", flow_nesting(100_000)), "deep.yaml").unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");
    assert!(e.message.contains("flow collections"), "{e}");
    assert!(e.message.contains(&MAX_DEPTH.to_string()), "{e}");
}

#[test]
fn deep_block_nesting_is_refused_by_the_event_pass() {
    let text = "- ".repeat(10_000) + "x\n";
    let e = check(&text, "block.yaml").unwrap_err();
    assert!(e.message.starts_with("collections nest deeper"), "{e}");
}

#[test]
fn an_oversized_document_is_refused_with_its_size_and_the_limit() {
    let limits = Limits {
        bytes: 10,
        ..Limits::DEFAULT
    };
    let e = check_with("a: 0123456789", "big.yaml", &limits).unwrap_err();
    assert_eq!(
        e.to_string(),
        "big.yaml: the document is 13 bytes, more than the limit of 10 bytes"
    );
}

#[test]
fn a_file_past_the_size_limit_is_refused_without_reading_it_all() {
    let e = read(std::path::Path::new("/dev/zero")).unwrap_err();
    assert!(e.contains(&MAX_BYTES.to_string()), "{e}");
    let e = read(std::path::Path::new("/nonexistent/x.yaml")).unwrap_err();
    assert!(e.starts_with("cannot read: "), "{e}");
}

#[test]
fn nesting_at_the_limit_passes_and_one_more_is_refused() {
    assert_eq!(check(&flow_nesting(MAX_DEPTH), "ok.yaml"), Ok(()));
    assert!(check(&flow_nesting(MAX_DEPTH + 1), "deep.yaml").is_err());
    let block = |n: usize| {
        (0..n)
            .map(|i| format!("{}k:\n", "  ".repeat(i)))
            .collect::<String>()
            + &"  ".repeat(n)
            + "x\n"
    };
    // `k:` n times opens n mappings; the last value is a scalar.
    assert_eq!(check(&block(MAX_DEPTH), "ok.yaml"), Ok(()));
    assert!(check(&block(MAX_DEPTH + 1), "deep.yaml").is_err());
}

#[test]
fn brackets_in_quotes_and_comments_do_not_count_but_an_apostrophe_in_a_word_is_text() {
    let deep = "[".repeat(200);
    assert_eq!(check(&format!("a: '{deep}'\n"), "q.yaml"), Ok(()));
    assert_eq!(check(&format!("a: \"\\\"{deep}\"\n"), "q.yaml"), Ok(()));
    assert_eq!(check(&format!("a: 'it''s {deep}'\n"), "q.yaml"), Ok(()));
    assert_eq!(check(&format!("a: 1 # {deep}\n"), "c.yaml"), Ok(()));
    // `don't` opens no quote, so the nesting after it is seen.
    let e = check(&format!("a: don't\nb: {}\n", flow_nesting(100)), "w.yaml").unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");
}

#[test]
fn a_quote_the_pre_scan_misreads_still_meets_the_event_pass() {
    // A plain scalar `x 'y` reads as an unclosed quote to the pre-scan; the event pass sees
    // the nesting after it.
    let text = format!("a: x 'y\nb: {}\n", flow_nesting(10_000));
    let e = check(&text, "m.yaml").unwrap_err();
    assert!(e.message.contains("nest deeper"), "{e}");
}

#[test]
fn aliases_within_the_limit_pass_and_are_counted_by_what_they_name() {
    let limits = Limits {
        expanded: 100,
        ..Limits::DEFAULT
    };
    // 10 scalars of 2 units and the list: 21 units; three aliases of it pass 100 only once
    // the fifth is added.
    let doc = |n: usize| {
        format!(
            "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: [{}]\n",
            vec!["*a"; n].join(",")
        )
    };
    assert_eq!(check_with(&doc(3), "ok.yaml", &limits), Ok(()));
    assert!(check_with(&doc(5), "big.yaml", &limits).is_err());
}

#[test]
fn syntax_errors_are_left_to_the_deserializer() {
    assert_eq!(check("a: [1, 2\n", "bad.yaml"), Ok(()));
    assert!(serde_yaml::from_str::<serde_yaml::Value>("a: [1, 2\n").is_err());
}

#[test]
fn a_syntax_error_before_aliases_is_refused_here_so_no_bomb_hides_behind_it() {
    let text = format!("x: [1, 2\n{}", alias_wide());
    let e = check(&text, "hidden.yaml").unwrap_err();
    assert!(e.message.starts_with("YAML syntax error: "), "{e}");
    assert!(e.line.is_some(), "{e:?}");
}

/// Every YAML file of the repository (the shipped configs, specs, space, deploy manifests),
/// outside build output.
fn shipped_yaml() -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                // The bombs are fixtures, not shipped files (plain serde_yaml would expand them).
                if !name.starts_with('.') && name != "target" && name != "yaml-bombs" {
                    walk(&p, out);
                }
            } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                out.push(p);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    walk(&root, &mut out);
    out
}

#[test]
fn every_shipped_yaml_file_passes_and_parses_as_plain_serde_yaml_does() {
    use serde::Deserialize as _;
    let files = shipped_yaml();
    assert!(files.len() >= 10, "found only {files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let origin = path.display().to_string();
        // Every document of a multi-document file, as serde_yaml reads them.
        let plain: Result<Vec<serde_yaml::Value>, _> = serde_yaml::Deserializer::from_str(&text)
            .map(serde_yaml::Value::deserialize)
            .collect();
        match check(&text, &origin) {
            Ok(()) => {}
            Err(e) => panic!("a shipped file is refused: {e}"),
        }
        assert!(plain.is_ok(), "{origin}: {plain:?}");
    }
}
