//! Helpers of tests/dashboards.rs and tests/dashboards_servers.rs: the catalogue, the
//! shipper's index template flattened to field → type, the fields a panel uses, the npm
//! LogQL parser.
#![allow(dead_code)]

#[path = "../../examples/dashboards.rs"]
pub mod generator;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

pub fn catalog() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/dashboards/catalog.json"
    ))
    .expect("deploy/dashboards/catalog.json");
    serde_json::from_str(&text).expect("catalog.json is JSON")
}

pub fn panels(c: &Value) -> &[Value] {
    c["panels"].as_array().expect("panels")
}

pub fn panel<'a>(c: &'a Value, id: &str) -> &'a Value {
    panels(c)
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("panel {id}"))
}

/// The shipper's own index template (what `start` installs), as dotted field → type; a
/// multi-field is `parent.sub` (`error.message.keyword`).
pub fn template_fields() -> HashMap<String, String> {
    let t = epost_shipper::sink::elasticsearch::template(&["logs-epost.*-*".to_string()], true);
    let mut out = HashMap::new();
    flatten("", &t["template"]["mappings"]["properties"], &mut out);
    out
}

fn flatten(prefix: &str, props: &Value, out: &mut HashMap<String, String>) {
    for (name, m) in props.as_object().into_iter().flatten() {
        let path = format!("{prefix}{name}");
        if let Some(ty) = m["type"].as_str() {
            out.insert(path.clone(), ty.to_string());
            for (sub, sm) in m["fields"].as_object().into_iter().flatten() {
                if let Some(st) = sm["type"].as_str() {
                    out.insert(format!("{path}.{sub}"), st.to_string());
                }
            }
        }
        if m["properties"].is_object() {
            flatten(&format!("{path}."), &m["properties"], out);
        }
    }
}

/// How a panel uses a field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Use {
    /// a `terms` aggregation or a Lens/visualization terms bucket: needs doc values
    Terms,
    /// `date_histogram`: a date
    DateHistogram,
    /// `term`/`terms` query: an exact value (not analysed text)
    Exact,
    /// `exists`: any mapped field
    Exists,
    /// `sort`: doc values
    Sort,
    /// a column shown in a saved search or a list: any mapped field
    Column,
}

/// The fields an ES `_search` body uses.
pub fn field_uses(body: &Value) -> Vec<(String, Use)> {
    let mut out = Vec::new();
    query_fields(&body["query"], &mut out);
    aggs_fields(&body["aggs"], &mut out);
    for s in body["sort"].as_array().into_iter().flatten() {
        for f in s.as_object().into_iter().flatten().map(|(k, _)| k) {
            out.push((f.clone(), Use::Sort));
        }
    }
    out
}

fn query_fields(q: &Value, out: &mut Vec<(String, Use)>) {
    let Some(o) = q.as_object() else { return };
    for (ty, spec) in o {
        match ty.as_str() {
            "bool" => {
                for key in ["filter", "must", "must_not", "should"] {
                    for sub in spec[key].as_array().into_iter().flatten() {
                        query_fields(sub, out);
                    }
                }
            }
            "term" | "terms" => {
                for f in spec.as_object().into_iter().flatten().map(|(k, _)| k) {
                    out.push((f.clone(), Use::Exact));
                }
            }
            "exists" => out.push((
                spec["field"].as_str().unwrap_or("").to_string(),
                Use::Exists,
            )),
            "match_all" => {}
            other => panic!("a query the check does not know: {other}"),
        }
    }
}

fn aggs_fields(aggs: &Value, out: &mut Vec<(String, Use)>) {
    for (_, agg) in aggs.as_object().into_iter().flatten() {
        for (ty, spec) in agg.as_object().into_iter().flatten() {
            match ty.as_str() {
                "aggs" => aggs_fields(spec, out),
                "terms" => out.push((spec["field"].as_str().unwrap_or("").to_string(), Use::Terms)),
                "date_histogram" => out.push((
                    spec["field"].as_str().unwrap_or("").to_string(),
                    Use::DateHistogram,
                )),
                "filters" => {
                    for (_, q) in spec["filters"].as_object().into_iter().flatten() {
                        query_fields(q, out);
                    }
                }
                other => panic!("an aggregation the check does not know: {other}"),
            }
        }
    }
}

/// The fields a generated saved object uses: Lens columns, visualization aggregations,
/// saved search columns.
pub fn object_field_uses(o: &Value) -> Vec<(String, Use)> {
    let mut out = Vec::new();
    let a = &o["attributes"];
    for c in a["columns"].as_array().into_iter().flatten() {
        out.push((c.as_str().unwrap_or("").to_string(), Use::Column));
    }
    let layers = &a["state"]["datasourceStates"]["formBased"]["layers"];
    for (_, layer) in layers.as_object().into_iter().flatten() {
        for (_, col) in layer["columns"].as_object().into_iter().flatten() {
            let f = col["sourceField"].as_str().unwrap_or("").to_string();
            match col["operationType"].as_str() {
                Some("terms") => out.push((f, Use::Terms)),
                Some("date_histogram") => out.push((f, Use::DateHistogram)),
                _ => {}
            }
        }
    }
    if let Some(vs) = a["visState"].as_str() {
        let vs: Value = serde_json::from_str(vs).expect("visState is JSON");
        for agg in vs["aggs"].as_array().into_iter().flatten() {
            let f = agg["params"]["field"].as_str().unwrap_or("").to_string();
            match agg["type"].as_str() {
                Some("terms") => out.push((f, Use::Terms)),
                Some("date_histogram") => out.push((f, Use::DateHistogram)),
                _ => {}
            }
        }
    }
    out
}

/// Whether the template maps `field` with a type that suits `use_`.
pub fn suits(mapping: &HashMap<String, String>, field: &str, use_: Use) -> Result<(), String> {
    let ty = mapping
        .get(field)
        .ok_or_else(|| format!("field `{field}` is not in the index template"))?;
    let ok = match use_ {
        Use::Terms | Use::Sort => {
            matches!(
                ty.as_str(),
                "keyword" | "ip" | "long" | "integer" | "boolean" | "date"
            )
        }
        Use::DateHistogram => ty == "date",
        Use::Exact => ty != "text",
        Use::Exists | Use::Column => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "field `{field}` is {ty}, which does not suit {use_:?}"
        ))
    }
}

/// Every reference of a saved object names an object of the same file, and every
/// `panelRefName` / `indexRefName` / Lens layer names one of its references.
pub fn check_references(path: &str, o: &Value, seen: &HashSet<(&str, &str)>) {
    let refs = o["references"].as_array().expect("references");
    let mut names = HashSet::new();
    for r in refs {
        let key = (r["type"].as_str().unwrap(), r["id"].as_str().unwrap());
        assert!(
            seen.contains(&key),
            "{path}: {} {} refers to missing {key:?}",
            o["type"],
            o["id"]
        );
        assert!(
            names.insert(r["name"].as_str().unwrap()),
            "{path}: reference name twice in {}",
            o["id"]
        );
    }
    let a = &o["attributes"];
    if let Some(ss) = a["kibanaSavedObjectMeta"]["searchSourceJSON"].as_str() {
        let ss: Value = serde_json::from_str(ss).expect("searchSourceJSON is JSON");
        if let Some(n) = ss["indexRefName"].as_str() {
            assert!(names.contains(n), "{path}: {} indexRefName {n}", o["id"]);
        }
    }
    if let Some(pj) = a["panelsJSON"].as_str() {
        let panels: Vec<Value> = serde_json::from_str(pj).expect("panelsJSON is JSON");
        assert!(!panels.is_empty(), "{path}: {} has no panels", o["id"]);
        for p in &panels {
            let n = p["panelRefName"].as_str().unwrap();
            // Kibana prefixes the reference name with the panel index
            let found = refs.iter().any(|r| {
                r["name"] == n
                    || r["name"]
                        .as_str()
                        .is_some_and(|rn| rn.ends_with(&format!(":{n}")))
            });
            assert!(
                found,
                "{path}: {} panelRefName {n} has no reference",
                o["id"]
            );
        }
    }
    if let Some(layers) = a["state"]["datasourceStates"]["formBased"]["layers"].as_object() {
        for l in layers.keys() {
            let n = format!("indexpattern-datasource-layer-{l}");
            assert!(
                names.contains(n.as_str()),
                "{path}: {} layer {l} has no data view",
                o["id"]
            );
        }
    }
    if let Some(cg) = a["controlGroupInput"]["panelsJSON"].as_str() {
        let cg: Value = serde_json::from_str(cg).expect("control group panelsJSON");
        for (id, c) in cg.as_object().into_iter().flatten() {
            let n = format!("controlGroup_{id}:optionsListDataView");
            assert!(names.contains(n.as_str()), "{path}: control {id}");
            let f = c["explicitInput"]["fieldName"].as_str().unwrap();
            assert!(
                template_fields().contains_key(f),
                "{path}: control field {f}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// LogQL: Grafana's grammar from npm
// ---------------------------------------------------------------------------------------

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The folder where `npm ci` installed @grafana/lezer-logql (from the committed lock file),
/// installing it on first use; `None` (skip) when node or npm is missing, which under CI
/// fails instead.
pub fn npm_parser() -> Option<PathBuf> {
    if !have("node") || !have("npm") {
        assert!(
            std::env::var_os("CI").is_none(),
            "node and npm must be installed in CI (the LogQL check needs them)"
        );
        eprintln!("skipping: node or npm not installed");
        return None;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboards");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboards-npm");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::read(src.join("package-lock.json")).unwrap();
    let installed = dir
        .join("node_modules/@grafana/lezer-logql/package.json")
        .exists()
        && std::fs::read(dir.join("package-lock.json")).ok().as_deref() == Some(lock.as_slice());
    for f in ["package.json", "package-lock.json", "parse_logql.mjs"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    if !installed {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .output()
            .expect("npm ci");
        assert!(
            out.status.success(),
            "npm ci in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(dir)
}

/// Runs parse_logql.mjs over `exprs`: one result per expression.
pub fn parse_logql(dir: &Path, exprs: &[String]) -> Vec<Value> {
    use std::io::Write;
    let mut child = Command::new("node")
        .arg("parse_logql.mjs")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(exprs).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("parse_logql.mjs output")
}

/// What Grafana sends for its variables: durations for the range ones, a message id.
pub fn grafana_interpolate(e: &str) -> String {
    e.replace("$__range", "1h")
        .replace("$__interval", "1h")
        .replace("$__auto", "1h")
        .replace("$local_id", "B0000000001")
}
