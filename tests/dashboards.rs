//! The dashboards of deploy/dashboards/ (issue 16, docs/dashboards.md).
//!
//! Static checks: the committed files are what examples/dashboards.rs generates from
//! catalog.json now; every NDJSON line parses, ids are derived from the panel ids and unique,
//! every reference (dashboard → panel → data view) resolves; every field a panel uses is in
//! the shipper's index template with a type that suits its use; every LogQL expression parses
//! with Grafana's own grammar (@grafana/lezer-logql, installed by `npm ci` into
//! target/dashboards-npm from tests/dashboards/package-lock.json).
//!
//! Semantic checks (tests/dashboards_servers.rs): a generated folder shipped to the real
//! servers, every panel run there.
//!
//! Deliberate breaks are in docs/dashboards.md ("What is verified").

mod dash;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use dash::generator as gen_;
use serde_json::Value;

#[test]
fn committed_files_are_what_the_catalogue_generates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = gen_::generate(&dash::catalog());
    assert_eq!(
        files.len(),
        4,
        "kibana, opensearch-dashboards, two grafana dashboards"
    );
    for (path, want) in files {
        let got = std::fs::read_to_string(root.join(&path)).unwrap_or_default();
        assert!(
            got == want,
            "{path} is not what the catalogue generates: run `cargo run --example dashboards`"
        );
    }
}

#[test]
fn catalogue_has_the_panels_and_ranked_panels_start_with_terms_by_count() {
    let c = dash::catalog();
    let ids: Vec<&str> = dash::panels(&c)
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    for want in [
        "journey",
        "failure-reasons",
        "failures-by-destination",
        "rejected-ips",
        "auth-failures-by-ip",
        "auth-failures-by-user",
        "logins-by-user",
        "top-senders",
        "top-recipients",
        "volume-per-hour-by-kind",
        "quarantine",
    ] {
        assert!(ids.contains(&want), "panel {want} missing: {ids:?}");
    }
    assert_eq!(
        ids.len(),
        ids.iter().collect::<HashSet<_>>().len(),
        "duplicate panel ids"
    );
    for p in dash::panels(&c) {
        for key in ["id", "title", "question", "logsql"] {
            assert!(
                p[key].as_str().is_some_and(|s| !s.is_empty()),
                "{key} of {p}"
            );
        }
        assert!(p["es"]["index"] == "logs-epost.*", "index of {}", p["id"]);
        assert!(p["es"]["body"].is_object(), "body of {}", p["id"]);
        assert!(!gen_::logql(p).is_empty(), "logql of {}", p["id"]);
        if p["kind"] == "ranked" {
            let (_, agg) = p["es"]["body"]["aggs"]
                .as_object()
                .unwrap()
                .iter()
                .next()
                .unwrap();
            let terms = &agg["terms"];
            assert!(
                terms.is_object(),
                "{}: first aggregation is not terms",
                p["id"]
            );
            assert_eq!(
                terms["order"],
                serde_json::json!({"_count": "desc"}),
                "{}",
                p["id"]
            );
        }
    }
    for d in c["dashboards"].as_array().unwrap() {
        for id in d["panels"].as_array().unwrap() {
            assert!(
                ids.contains(&id.as_str().unwrap()),
                "{} names {id}",
                d["id"]
            );
        }
    }
    let titles: Vec<&Value> = c["dashboards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["title"])
        .collect();
    assert!(titles.contains(&&Value::from("E-Post mail flow")));
    assert!(titles.contains(&&Value::from("E-Post security")));
}

#[test]
fn every_field_is_in_the_index_template_with_a_suitable_type() {
    let mapping = dash::template_fields();
    let c = dash::catalog();
    let mut checked = 0;
    for p in dash::panels(&c) {
        let uses = dash::field_uses(&p["es"]["body"]);
        assert!(!uses.is_empty(), "{}: no field found in its body", p["id"]);
        for (field, use_) in uses {
            if let Err(e) = dash::suits(&mapping, &field, use_) {
                panic!("panel {}: {e}", p["id"]);
            }
            checked += 1;
        }
        for col in p["columns"].as_array().into_iter().flatten() {
            let f = col.as_str().unwrap();
            assert!(
                mapping.contains_key(f),
                "panel {}: column {f} not in the template",
                p["id"]
            );
        }
    }
    // the generated objects: lens columns, visualizations' aggregations, saved search columns
    for (path, text) in gen_::generate(&c) {
        if !path.ends_with(".ndjson") {
            continue;
        }
        for o in text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
        {
            for (field, use_) in dash::object_field_uses(&o) {
                if let Err(e) = dash::suits(&mapping, &field, use_) {
                    panic!("{path}: {} {}: {e}", o["type"], o["id"]);
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 60, "{checked} field uses checked");
}

#[test]
fn the_field_check_refuses_a_wrong_field_and_a_wrong_type() {
    // the check itself can fail: a misspelt field, a text field under terms, a keyword
    // under date_histogram
    let mapping = dash::template_fields();
    let body: Value = serde_json::json!({"aggs": {"a": {"terms": {"field": "client.address"}}}});
    let (f, u) = dash::field_uses(&body).remove(0);
    assert!(
        dash::suits(&mapping, &f, u)
            .unwrap_err()
            .contains("not in the index template")
    );
    let body: Value = serde_json::json!({"aggs": {"a": {"terms": {"field": "error.message"}}}});
    let (f, u) = dash::field_uses(&body).remove(0);
    assert!(dash::suits(&mapping, &f, u).unwrap_err().contains("text"));
    let body: Value = serde_json::json!({"aggs": {"a": {"date_histogram": {"field": "epost.log", "fixed_interval": "1h"}}}});
    let (f, u) = dash::field_uses(&body).remove(0);
    assert!(dash::suits(&mapping, &f, u).is_err());
    assert!(dash::suits(&mapping, "error.message.keyword", dash::Use::Terms).is_ok());
}

/// Every NDJSON line parses; (type, id) unique; ids derived from the catalogue's ids; every
/// reference and every panelRefName / indexRefName resolves.
#[test]
fn saved_objects_parse_have_stable_unique_ids_and_references_resolve() {
    let c = dash::catalog();
    for (path, text) in gen_::generate(&c) {
        if !path.ends_with(".ndjson") {
            continue;
        }
        let objects: Vec<Value> = text
            .lines()
            .enumerate()
            .map(|(n, l)| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}:{}: {e}", n + 1))
            })
            .collect();
        let mut seen = HashSet::new();
        for o in &objects {
            let key = (o["type"].as_str().unwrap(), o["id"].as_str().unwrap());
            assert!(seen.insert(key), "{path}: {key:?} twice");
            assert!(o["attributes"].is_object(), "{path}: {key:?}");
        }
        let count = |ty: &str| objects.iter().filter(|o| o["type"] == ty).count();
        assert_eq!(count("index-pattern"), 1, "{path}");
        assert_eq!(count("dashboard"), 2, "{path}");
        assert_eq!(
            count("search"),
            dash::panels(&c).len(),
            "{path}: a saved search per panel"
        );
        let vis = if path.contains("kibana") {
            "lens"
        } else {
            "visualization"
        };
        let charts = dash::panels(&c)
            .iter()
            .filter(|p| p["kind"] != "list")
            .count();
        assert_eq!(count(vis), charts, "{path}: a {vis} per chart panel");
        // ids derived from the catalogue's ids, so re-importing replaces the same objects
        for p in dash::panels(&c) {
            let id = p["id"].as_str().unwrap();
            assert!(seen.contains(&("search", format!("epost-search-{id}").as_str())));
            if p["kind"] != "list" {
                let want = if vis == "lens" {
                    format!("epost-lens-{id}")
                } else {
                    format!("epost-vis-{id}")
                };
                assert!(seen.contains(&(vis, want.as_str())), "{path}: {want}");
            }
        }
        assert!(seen.contains(&("index-pattern", gen_::DATA_VIEW_ID)));
        let pattern = objects
            .iter()
            .find(|o| o["type"] == "index-pattern")
            .unwrap();
        assert_eq!(pattern["attributes"]["title"], "logs-epost.*", "{path}");
        for o in &objects {
            dash::check_references(&path, o, &seen);
        }
        dashboards_hold_the_catalogue_panels(&path, &c, &objects);
    }
}

#[test]
fn grafana_dashboards_use_the_loki_input_the_catalogue_queries_and_local_id() {
    let c = dash::catalog();
    let by_id: HashMap<&str, &Value> = dash::panels(&c)
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let mut uids = HashSet::new();
    for (path, text) in gen_::generate(&c) {
        if path.ends_with(".ndjson") {
            continue;
        }
        let d: Value = serde_json::from_str(&text).unwrap();
        assert!(
            uids.insert(d["uid"].as_str().unwrap().to_string()),
            "{path}: uid"
        );
        let vars: Vec<&str> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert!(
            vars.contains(&"DS_LOKI") && vars.contains(&"local_id"),
            "{path}: {vars:?}"
        );
        assert_eq!(d["__inputs"][0]["name"], "DS_LOKI");
        assert_eq!(d["__inputs"][0]["pluginId"], "loki");
        let cat = c["dashboards"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["title"] == d["title"])
            .unwrap();
        let panels = d["panels"].as_array().unwrap();
        assert_eq!(
            panels.len(),
            cat["panels"].as_array().unwrap().len(),
            "{path}"
        );
        let mut ids = HashSet::new();
        for (gp, id) in panels.iter().zip(cat["panels"].as_array().unwrap()) {
            assert!(ids.insert(gp["id"].as_u64().unwrap()), "{path}: panel id");
            let p = by_id[id.as_str().unwrap()];
            assert_eq!(gp["title"], p["title"]);
            assert_eq!(
                gp["datasource"]["uid"], "${DS_LOKI}",
                "{path}: {}",
                gp["title"]
            );
            let exprs: Vec<&str> = gp["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    assert_eq!(t["datasource"]["uid"], "${DS_LOKI}");
                    t["expr"].as_str().unwrap()
                })
                .collect();
            let want: Vec<String> = gen_::logql(p).into_iter().map(|(_, e)| e).collect();
            assert_eq!(exprs, want, "{path}: {}", p["id"]);
            if p["id"] == "journey" {
                assert!(
                    exprs[0].contains("$local_id"),
                    "{path}: journey uses $local_id"
                );
            }
        }
    }
    assert_eq!(uids.len(), 2);
}

#[test]
fn every_logql_expression_parses_with_grafanas_grammar() {
    let Some(dir) = dash::npm_parser() else {
        return;
    };
    let c = dash::catalog();
    let mut exprs: Vec<(String, String)> = Vec::new();
    for p in dash::panels(&c) {
        for (name, e) in gen_::logql(p) {
            exprs.push((format!("{}/{name}", p["id"].as_str().unwrap()), e));
        }
    }
    // Grafana interpolates its variables before a query is sent (and before its own editor
    // validates it): $__range and $__interval become durations, $local_id a message id
    let interpolated: Vec<String> = exprs
        .iter()
        .map(|(_, e)| dash::grafana_interpolate(e))
        .collect();
    // a broken expression next to them proves the parser reports errors
    let mut input = interpolated.clone();
    input.push("sum(count_over_time({job=\"epost\" [1h]))".to_string());
    let out = dash::parse_logql(&dir, &input);
    assert_eq!(out.len(), input.len());
    for ((name, e), r) in exprs.iter().zip(&out) {
        assert_eq!(r["errors"], serde_json::json!([]), "{name}: {e}");
        assert_eq!(r["top"], serde_json::json!(["Expr"]), "{name}: {e}");
        assert_eq!(
            r["length"].as_u64(),
            Some(dash::grafana_interpolate(e).len() as u64)
        );
    }
    assert_ne!(
        out.last().unwrap()["errors"],
        serde_json::json!([]),
        "the broken one"
    );
}

/// The parser's version is pinned, with its hash, in the committed lock file `npm ci` reads.
#[test]
fn npm_lock_file_pins_the_parser() {
    let lock: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/dashboards/package-lock.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let p = &lock["packages"]["node_modules/@grafana/lezer-logql"];
    assert!(p["version"].is_string(), "{p}");
    assert!(
        p["integrity"].as_str().unwrap().starts_with("sha512-"),
        "{p}"
    );
}

/// The dashboards hold the panels the catalogue names, in its order.
fn dashboards_hold_the_catalogue_panels(path: &str, c: &Value, objects: &[Value]) {
    for d in c["dashboards"].as_array().unwrap() {
        let o = objects
            .iter()
            .find(|o| {
                o["type"] == "dashboard"
                    && o["id"] == format!("epost-dashboard-{}", d["id"].as_str().unwrap())
            })
            .unwrap_or_else(|| panic!("{path}: dashboard {}", d["id"]));
        assert_eq!(o["attributes"]["title"], d["title"]);
        let panels: Vec<Value> =
            serde_json::from_str(o["attributes"]["panelsJSON"].as_str().unwrap()).unwrap();
        let got: Vec<&str> = panels
            .iter()
            .map(|p| p["panelIndex"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = d["panels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(got, want, "{path}: panels of {}", d["id"]);
    }
}
