//! Generates the dashboards from their one source, `deploy/dashboards/catalog.json`:
//!
//! - `deploy/dashboards/kibana.ndjson`: Kibana saved objects (a data view on `logs-epost.*`,
//!   a saved search per panel, a Lens visualization per chart panel, the dashboards)
//! - `deploy/dashboards/opensearch-dashboards.ndjson`: OpenSearch Dashboards saved objects
//!   (index pattern, saved searches, visualizations, dashboards)
//! - `deploy/dashboards/grafana/<dashboard>.json`: Grafana dashboards on a Loki data source
//!
//!   cargo run --example dashboards            # writes the files
//!   cargo run --example dashboards -- --check # exit 1 if a committed file differs
//!
//! tests/dashboards.rs includes this file and fails when the committed files are not what
//! `generate` gives now. Ids are derived from the panel and dashboard ids only, so they are
//! stable across runs and machines (re-importing replaces the objects instead of adding
//! copies). docs/dashboards.md says how to import them and what is verified.

use std::path::Path;

use serde_json::{Map, Value, json};

/// The data view / index pattern id shared by every Kibana and OpenSearch Dashboards object.
pub const DATA_VIEW_ID: &str = "epost-logs";
/// Kibana's migration versions of the objects as written (Kibana 8.9 and later read them).
const KIBANA_CORE: &str = "8.8.0";

/// The generated files, as (path relative to the repository, contents).
pub fn generate(catalog: &Value) -> Vec<(String, String)> {
    let mut out = vec![
        (
            "deploy/dashboards/kibana.ndjson".to_string(),
            ndjson(&kibana(catalog)),
        ),
        (
            "deploy/dashboards/opensearch-dashboards.ndjson".to_string(),
            ndjson(&opensearch(catalog)),
        ),
    ];
    for d in dashboards(catalog) {
        let id = str_of(d, "id");
        let text = serde_json::to_string_pretty(&grafana(catalog, d)).expect("json") + "\n";
        out.push((format!("deploy/dashboards/grafana/epost-{id}.json"), text));
    }
    out
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let check = std::env::args().any(|a| a == "--check");
    let text = std::fs::read_to_string(root.join("deploy/dashboards/catalog.json"))
        .expect("read deploy/dashboards/catalog.json");
    let catalog: Value = serde_json::from_str(&text).expect("catalog.json is JSON");
    let mut stale = 0;
    for (path, contents) in generate(&catalog) {
        let file = root.join(&path);
        if check {
            if std::fs::read_to_string(&file).ok().as_deref() != Some(contents.as_str()) {
                eprintln!("{path} differs from what the catalogue generates");
                stale += 1;
            }
        } else {
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(&file, contents).expect("write");
            println!("wrote {path}");
        }
    }
    if stale > 0 {
        std::process::exit(1);
    }
}

fn ndjson(objects: &[Value]) -> String {
    let mut s = String::new();
    for o in objects {
        s.push_str(&serde_json::to_string(o).expect("json"));
        s.push('\n');
    }
    s
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

fn panels(catalog: &Value) -> &[Value] {
    catalog["panels"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn dashboards(catalog: &Value) -> &[Value] {
    catalog["dashboards"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn panel<'a>(catalog: &'a Value, id: &str) -> Option<&'a Value> {
    panels(catalog).iter().find(|p| p["id"] == id)
}

/// The panels of a dashboard, in its order.
fn dashboard_panels<'a>(catalog: &'a Value, d: &'a Value) -> Vec<&'a Value> {
    d["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| panel(catalog, id.as_str().unwrap_or_default()))
        .collect()
}

/// The first aggregation of a panel's body: (name, type, its object).
fn first_agg(p: &Value) -> Option<(&str, &str, &Value)> {
    let (name, agg) = p["es"]["body"]["aggs"].as_object()?.iter().next()?;
    let (ty, spec) = agg.as_object()?.iter().find(|(k, _)| *k != "aggs")?;
    Some((name.as_str(), ty.as_str(), spec))
}

fn terms_field(p: &Value) -> String {
    match first_agg(p) {
        Some((_, "terms", spec)) => str_of(spec, "field").to_string(),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------
// KQL from the ES query (the subset the catalogue uses): Kibana and OpenSearch Dashboards
// objects carry the same filter as the `_search` body, written in their query language.
// ---------------------------------------------------------------------------------------

/// KQL for an ES query; `$local_id` (the journey variable) becomes `*`: the dashboard's
/// control (Kibana) or the query bar (OpenSearch Dashboards) picks the message.
pub fn kql(query: &Value) -> String {
    let Some((ty, spec)) = query.as_object().and_then(|o| o.iter().next()) else {
        return String::new();
    };
    match ty.as_str() {
        "bool" => {
            let mut parts: Vec<String> = Vec::new();
            for key in ["filter", "must"] {
                for q in spec[key].as_array().into_iter().flatten() {
                    parts.push(kql(q));
                }
            }
            for q in spec["must_not"].as_array().into_iter().flatten() {
                parts.push(format!("not {}", kql(q)));
            }
            let should: Vec<String> = spec["should"]
                .as_array()
                .into_iter()
                .flatten()
                .map(kql)
                .collect();
            if !should.is_empty() {
                parts.push(format!("({})", should.join(" or ")));
            }
            parts.join(" and ")
        }
        "term" => spec
            .as_object()
            .and_then(|o| o.iter().next())
            .map(|(f, v)| format!("{f}: {}", kql_value(v)))
            .unwrap_or_default(),
        "terms" => spec
            .as_object()
            .and_then(|o| o.iter().next())
            .map(|(f, vs)| {
                let vs: Vec<String> = vs.as_array().into_iter().flatten().map(kql_value).collect();
                format!("{f}: ({})", vs.join(" or "))
            })
            .unwrap_or_default(),
        "exists" => format!("{}: *", str_of(spec, "field")),
        other => panic!("the catalogue uses a query KQL is not written for here: {other}"),
    }
}

fn kql_value(v: &Value) -> String {
    match v.as_str() {
        Some("$local_id") => "*".to_string(),
        Some(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        None => v.to_string(),
    }
}

fn panel_kql(p: &Value) -> String {
    kql(&p["es"]["body"]["query"])
}

fn search_source(query: &str) -> String {
    json!({
        "query": {"query": query, "language": "kuery"},
        "filter": [],
        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"
    })
    .to_string()
}

fn index_ref() -> Value {
    json!([{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": DATA_VIEW_ID}])
}

fn columns(p: &Value) -> Value {
    if p["columns"].is_array() {
        return p["columns"].clone();
    }
    let mut c = vec![json!("@timestamp"), json!("epost.log")];
    let key = terms_field(p);
    if !key.is_empty() {
        c.push(json!(key.trim_end_matches(".keyword")));
    }
    c.push(json!("message"));
    Value::Array(c)
}

/// The saved search of a panel: the records behind it (Discover), shared by both UIs.
fn saved_search(p: &Value, id_prefix: &str) -> Value {
    let id = str_of(p, "id");
    let asc = p["es"]["body"]["sort"][0]["@timestamp"]["order"] == "asc";
    json!({
        "type": "search",
        "id": format!("{id_prefix}search-{id}"),
        "attributes": {
            "title": format!("E-Post: {} (records)", str_of(p, "title")),
            "description": str_of(p, "question"),
            "columns": columns(p),
            "sort": [["@timestamp", if asc { "asc" } else { "desc" }]],
            "kibanaSavedObjectMeta": {"searchSourceJSON": search_source(&panel_kql(p))}
        },
        "references": index_ref()
    })
}

// ---------------------------------------------------------------------------------------
// Kibana
// ---------------------------------------------------------------------------------------

fn kibana(catalog: &Value) -> Vec<Value> {
    let mut out = vec![json!({
        "type": "index-pattern",
        "id": DATA_VIEW_ID,
        "attributes": {
            "title": "logs-epost.*",
            "name": "E-Post logs (logs-epost.*)",
            "timeFieldName": "@timestamp"
        },
        "references": [],
        "coreMigrationVersion": KIBANA_CORE,
        "typeMigrationVersion": "8.0.0"
    })];
    for p in panels(catalog) {
        let mut s = saved_search(p, "epost-");
        s["coreMigrationVersion"] = json!(KIBANA_CORE);
        s["typeMigrationVersion"] = json!("8.0.0");
        out.push(s);
        if str_of(p, "kind") != "list" {
            out.push(lens(p));
        }
    }
    for d in dashboards(catalog) {
        out.push(kibana_dashboard(catalog, d));
    }
    out
}

fn count_column() -> Value {
    json!({"label": "Records", "dataType": "number", "operationType": "count",
        "isBucketed": false, "scale": "ratio", "sourceField": "___records___", "params": {"emptyAsNull": true}})
}

/// The data type Kibana gives a field of the shipper's index template (`ip` stays `ip`,
/// keywords are `string`): a Lens column declares its field's type.
fn lens_data_type(field: &str) -> &'static str {
    let t = epost_shipper::sink::elasticsearch::template(&[], true);
    let mut m = &t["template"]["mappings"];
    for part in field.split('.') {
        m = if m["properties"][part].is_object() {
            &m["properties"][part]
        } else {
            &m["fields"][part]
        };
    }
    match m["type"].as_str() {
        Some("ip") => "ip",
        Some("long" | "integer") => "number",
        Some("boolean") => "boolean",
        Some("date") => "date",
        _ => "string",
    }
}

fn terms_column(field: &str, size: u64, order_by: &str) -> Value {
    json!({"label": field, "dataType": lens_data_type(field), "operationType": "terms", "sourceField": field,
        "isBucketed": true, "scale": "ordinal",
        "params": {"size": size, "orderBy": {"type": "column", "columnId": order_by},
            "orderDirection": "desc", "otherBucket": false, "missingBucket": false,
            "parentFormat": {"id": "terms"}}})
}

/// A Lens visualization: (visualization type, columns in order, visualization state).
fn lens_shape(p: &Value) -> (&'static str, Vec<(&'static str, Value)>, Value) {
    let layer = "layer1";
    match str_of(p, "kind") {
        "ranked" => {
            let (_, _, spec) = first_agg(p).expect("a ranked panel has a terms aggregation");
            let size = spec["size"].as_u64().unwrap_or(10);
            let cols = vec![
                ("key", terms_column(&terms_field(p), size, "count")),
                ("count", count_column()),
            ];
            let vis = json!({"preferredSeriesType": "bar_horizontal", "legend": {"isVisible": false, "position": "right"},
                "valueLabels": "show",
                "layers": [{"layerId": layer, "layerType": "data", "seriesType": "bar_horizontal",
                    "xAccessor": "key", "accessors": ["count"]}]});
            ("lnsXY", cols, vis)
        }
        "histogram" => {
            let hour = json!({"label": "@timestamp per hour", "dataType": "date", "operationType": "date_histogram",
                "sourceField": "@timestamp", "isBucketed": true, "scale": "interval",
                "params": {"interval": "1h", "includeEmptyRows": false, "dropPartials": false}});
            let cols = vec![
                ("hour", hour),
                ("kind", terms_column("epost.log", 20, "count")),
                ("count", count_column()),
            ];
            let vis = json!({"preferredSeriesType": "bar_stacked", "legend": {"isVisible": true, "position": "right"},
                "valueLabels": "hide",
                "layers": [{"layerId": layer, "layerType": "data", "seriesType": "bar_stacked",
                    "xAccessor": "hour", "splitAccessor": "kind", "accessors": ["count"]}]});
            ("lnsXY", cols, vis)
        }
        _ => {
            let filters = totals_filters(p)
                .into_iter()
                .map(|(label, q)| json!({"label": label, "input": {"query": q, "language": "kuery"}}))
                .collect::<Vec<_>>();
            let what = json!({"label": "Total", "dataType": "string", "operationType": "filters",
                "isBucketed": true, "scale": "ordinal", "params": {"filters": filters}});
            let cols = vec![("what", what), ("count", count_column())];
            let vis = json!({"layerId": layer, "layerType": "data",
                "columns": [{"columnId": "what"}, {"columnId": "count"}]});
            ("lnsDatatable", cols, vis)
        }
    }
}

/// The named filters of the totals panel, as KQL.
fn totals_filters(p: &Value) -> Vec<(String, String)> {
    match first_agg(p) {
        Some((_, "filters", spec)) => spec["filters"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, q)| (k.clone(), kql(q)))
            .collect(),
        _ => Vec::new(),
    }
}

fn lens(p: &Value) -> Value {
    let id = str_of(p, "id");
    let (vis_type, cols, vis) = lens_shape(p);
    let order: Vec<&str> = cols.iter().map(|(k, _)| *k).collect();
    let columns: Map<String, Value> = cols.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    json!({
        "type": "lens",
        "id": format!("epost-lens-{id}"),
        "attributes": {
            "title": format!("E-Post: {}", str_of(p, "title")),
            "description": str_of(p, "question"),
            "visualizationType": vis_type,
            "state": {
                "datasourceStates": {"formBased": {"layers": {"layer1": {
                    "columns": columns, "columnOrder": order, "incompleteColumns": {}
                }}}},
                "visualization": vis,
                "query": {"query": panel_kql(p), "language": "kuery"},
                "filters": [],
                "adHocDataViews": {},
                "internalReferences": []
            }
        },
        "references": [{"type": "index-pattern", "id": DATA_VIEW_ID, "name": "indexpattern-datasource-layer-layer1"}],
        "coreMigrationVersion": KIBANA_CORE,
        "typeMigrationVersion": "8.9.0"
    })
}

/// Grid positions: totals across the whole width, the others two by two.
fn grid(ps: &[&Value]) -> Vec<(u64, u64, u64, u64)> {
    let (mut x, mut y) = (0u64, 0u64);
    let mut out = Vec::new();
    for p in ps {
        let wide = matches!(str_of(p, "kind"), "totals" | "histogram" | "list");
        let (w, h) = if wide { (48, 12) } else { (24, 14) };
        if x + w > 48 {
            x = 0;
            y += 14;
        }
        out.push((x, y, w, h));
        x += w;
        if x >= 48 {
            x = 0;
            y += h;
        }
    }
    out
}

fn kibana_dashboard(catalog: &Value, d: &Value) -> Value {
    let ps = dashboard_panels(catalog, d);
    let mut panels_json = Vec::new();
    let mut refs = Vec::new();
    for (i, (p, (x, y, w, h))) in ps.iter().zip(grid(&ps)).enumerate() {
        let id = str_of(p, "id");
        let (ty, obj) = if str_of(p, "kind") == "list" {
            ("search", format!("epost-search-{id}"))
        } else {
            ("lens", format!("epost-lens-{id}"))
        };
        let name = format!("panel_{i}");
        panels_json.push(json!({"type": ty, "panelIndex": id, "panelRefName": name,
            "gridData": {"x": x, "y": y, "w": w, "h": h, "i": id}, "embeddableConfig": {"enhancements": {}}}));
        refs.push(json!({"name": format!("{id}:{name}"), "type": ty, "id": obj}));
    }
    let control = "local-id";
    let controls = json!({control: {"order": 0, "width": "medium", "grow": true, "type": "optionsListControl",
        "explicitInput": {"id": control, "fieldName": "email.local_id", "title": "Message (email.local_id)",
            "singleSelect": true, "enhancements": {}}}});
    refs.push(json!({"name": format!("controlGroup_{control}:optionsListDataView"), "type": "index-pattern", "id": DATA_VIEW_ID}));
    json!({
        "type": "dashboard",
        "id": format!("epost-dashboard-{}", str_of(d, "id")),
        "attributes": {
            "title": str_of(d, "title"),
            "description": "Generated from deploy/dashboards/catalog.json (docs/dashboards.md)",
            "panelsJSON": Value::Array(panels_json).to_string(),
            "optionsJSON": json!({"useMargins": true, "syncColors": false, "syncCursor": true, "syncTooltips": false, "hidePanelTitles": false}).to_string(),
            "controlGroupInput": {"controlStyle": "oneLine", "chainingSystem": "HIERARCHICAL",
                "panelsJSON": controls.to_string(),
                "ignoreParentSettingsJSON": json!({"ignoreFilters": false, "ignoreQuery": false, "ignoreTimerange": false, "ignoreValidations": false}).to_string()},
            "timeRestore": false,
            "kibanaSavedObjectMeta": {"searchSourceJSON": json!({"query": {"query": "", "language": "kuery"}, "filter": []}).to_string()}
        },
        "references": refs,
        "coreMigrationVersion": KIBANA_CORE,
        "typeMigrationVersion": "8.9.0"
    })
}

// ---------------------------------------------------------------------------------------
// OpenSearch Dashboards
// ---------------------------------------------------------------------------------------

fn opensearch(catalog: &Value) -> Vec<Value> {
    let mut out = vec![json!({
        "type": "index-pattern",
        "id": DATA_VIEW_ID,
        "attributes": {"title": "logs-epost.*", "timeFieldName": "@timestamp"},
        "references": [],
        "migrationVersion": {"index-pattern": "7.6.0"}
    })];
    for p in panels(catalog) {
        let mut s = saved_search(p, "epost-");
        s["migrationVersion"] = json!({"search": "7.9.3"});
        out.push(s);
        if str_of(p, "kind") != "list" {
            out.push(osd_visualization(p));
        }
    }
    for d in dashboards(catalog) {
        out.push(osd_dashboard(catalog, d));
    }
    out
}

/// The legacy visualization of a panel: (type, aggregations, params).
fn osd_shape(p: &Value) -> (&'static str, Vec<Value>, Value) {
    let count =
        json!({"id": "1", "enabled": true, "type": "count", "schema": "metric", "params": {}});
    let table = json!({"perPage": 10, "showPartialRows": false, "showMetricsAtAllLevels": false,
        "showTotal": false, "totalFunc": "sum", "percentageCol": ""});
    match str_of(p, "kind") {
        "ranked" => {
            let size = first_agg(p)
                .and_then(|(_, _, s)| s["size"].as_u64())
                .unwrap_or(10);
            let terms = json!({"id": "2", "enabled": true, "type": "terms", "schema": "bucket",
                "params": {"field": terms_field(p), "size": size, "order": "desc", "orderBy": "1",
                    "otherBucket": false, "missingBucket": false}});
            ("table", vec![count, terms], table)
        }
        "histogram" => {
            let hour = json!({"id": "2", "enabled": true, "type": "date_histogram", "schema": "segment",
                "params": {"field": "@timestamp", "interval": "h", "min_doc_count": 1, "extended_bounds": {}}});
            let kind = json!({"id": "3", "enabled": true, "type": "terms", "schema": "group",
                "params": {"field": "epost.log", "size": 20, "order": "desc", "orderBy": "1"}});
            let params = json!({"type": "histogram", "addLegend": true, "legendPosition": "right",
                "addTooltip": true, "seriesParams": [{"show": true, "type": "histogram", "mode": "stacked",
                    "data": {"label": "Count", "id": "1"}, "valueAxis": "ValueAxis-1"}]});
            ("histogram", vec![count, hour, kind], params)
        }
        _ => {
            let filters: Vec<Value> = totals_filters(p)
                .into_iter()
                .map(|(label, q)| json!({"input": {"query": q, "language": "kuery"}, "label": label}))
                .collect();
            let f = json!({"id": "2", "enabled": true, "type": "filters", "schema": "bucket",
                "params": {"filters": filters}});
            ("table", vec![count, f], table)
        }
    }
}

fn osd_visualization(p: &Value) -> Value {
    let id = str_of(p, "id");
    let title = format!("E-Post: {}", str_of(p, "title"));
    let (ty, aggs, params) = osd_shape(p);
    let vis_state = json!({"title": title, "type": ty, "aggs": aggs, "params": params});
    json!({
        "type": "visualization",
        "id": format!("epost-vis-{id}"),
        "attributes": {
            "title": title,
            "description": str_of(p, "question"),
            "visState": vis_state.to_string(),
            "uiStateJSON": "{}",
            "version": 1,
            "kibanaSavedObjectMeta": {"searchSourceJSON": search_source(&panel_kql(p))}
        },
        "references": index_ref(),
        "migrationVersion": {"visualization": "7.10.0"}
    })
}

fn osd_dashboard(catalog: &Value, d: &Value) -> Value {
    let ps = dashboard_panels(catalog, d);
    let mut panels_json = Vec::new();
    let mut refs = Vec::new();
    for (i, (p, (x, y, w, h))) in ps.iter().zip(grid(&ps)).enumerate() {
        let id = str_of(p, "id");
        let (ty, obj) = if str_of(p, "kind") == "list" {
            ("search", format!("epost-search-{id}"))
        } else {
            ("visualization", format!("epost-vis-{id}"))
        };
        let name = format!("panel_{i}");
        panels_json.push(
            json!({"version": "2.0.0", "panelIndex": id, "panelRefName": name,
            "gridData": {"x": x, "y": y, "w": w, "h": h, "i": id}, "embeddableConfig": {}}),
        );
        refs.push(json!({"name": name, "type": ty, "id": obj}));
    }
    json!({
        "type": "dashboard",
        "id": format!("epost-dashboard-{}", str_of(d, "id")),
        "attributes": {
            "title": str_of(d, "title"),
            "description": "Generated from deploy/dashboards/catalog.json (docs/dashboards.md). Journey: type email.local_id: B... in the query bar.",
            "hits": 0,
            "panelsJSON": Value::Array(panels_json).to_string(),
            "optionsJSON": json!({"useMargins": true, "hidePanelTitles": false}).to_string(),
            "version": 1,
            "timeRestore": false,
            "kibanaSavedObjectMeta": {"searchSourceJSON": json!({"query": {"query": "", "language": "kuery"}, "filter": []}).to_string()}
        },
        "references": refs,
        "migrationVersion": {"dashboard": "7.9.3"}
    })
}

// ---------------------------------------------------------------------------------------
// Grafana
// ---------------------------------------------------------------------------------------

/// The LogQL expressions of a panel, as (name, expression).
pub fn logql(p: &Value) -> Vec<(String, String)> {
    match &p["logql"] {
        Value::String(s) => vec![(str_of(p, "id").to_string(), s.clone())],
        Value::Array(v) => v
            .iter()
            .map(|q| (str_of(q, "name").to_string(), str_of(q, "expr").to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

const LOKI: &str = "${DS_LOKI}";

fn grafana_targets(p: &Value) -> Vec<Value> {
    let instant = matches!(str_of(p, "kind"), "ranked" | "totals");
    let key = match str_of(p, "kind") {
        "ranked" => logql(p)
            .first()
            .and_then(|(_, e)| e.split("sum by (").nth(1))
            .and_then(|r| r.split(')').next())
            .map(|k| format!("{{{{{k}}}}}"))
            .unwrap_or_default(),
        "histogram" => "{{log}}".to_string(),
        _ => String::new(),
    };
    logql(p)
        .into_iter()
        .enumerate()
        .map(|(i, (name, expr))| {
            let legend = if str_of(p, "kind") == "totals" {
                name
            } else {
                key.clone()
            };
            let ref_id = char::from(b'A' + (i as u8 % 26)).to_string();
            json!({"refId": ref_id, "datasource": {"type": "loki", "uid": LOKI}, "expr": expr,
                "queryType": if instant { "instant" } else { "range" }, "legendFormat": legend})
        })
        .collect()
}

fn grafana_panel(p: &Value, n: usize, (x, y, w, h): (u64, u64, u64, u64)) -> Value {
    let ty = match str_of(p, "kind") {
        "ranked" => "bargauge",
        "totals" => "stat",
        "histogram" => "timeseries",
        _ => "logs",
    };
    let mut v = json!({
        "id": n + 1,
        "type": ty,
        "title": str_of(p, "title"),
        "description": str_of(p, "question"),
        "datasource": {"type": "loki", "uid": LOKI},
        "gridPos": {"x": x / 2, "y": y / 2, "w": w / 2, "h": h / 2 + 2},
        "targets": grafana_targets(p)
    });
    match ty {
        "bargauge" => {
            v["options"] = json!({"orientation": "horizontal", "displayMode": "basic", "showUnfilled": true,
                "reduceOptions": {"calcs": ["lastNotNull"], "values": false}});
        }
        "stat" => {
            v["options"] = json!({"reduceOptions": {"calcs": ["lastNotNull"], "values": false}, "textMode": "value_and_name"});
        }
        "timeseries" => {
            v["interval"] = json!("1h");
            v["fieldConfig"] = json!({"defaults": {"custom": {"drawStyle": "bars", "stacking": {"mode": "normal"}}}, "overrides": []});
        }
        _ => {
            v["options"] = json!({"showTime": true, "sortOrder": "Ascending", "wrapLogMessage": true, "enableLogDetails": true});
        }
    }
    if let Some(note) = p["logql_note"].as_str() {
        v["description"] = json!(format!("{} ({note})", str_of(p, "question")));
    }
    v
}

fn grafana(catalog: &Value, d: &Value) -> Value {
    let ps = dashboard_panels(catalog, d);
    let panels: Vec<Value> = ps
        .iter()
        .zip(grid(&ps))
        .enumerate()
        .map(|(n, (p, g))| grafana_panel(p, n, g))
        .collect();
    let id = str_of(d, "id");
    json!({
        "__inputs": [{"name": "DS_LOKI", "label": "Loki", "description": "the Loki the shipper pushes to",
            "type": "datasource", "pluginId": "loki", "pluginName": "Loki"}],
        "__requires": [{"type": "datasource", "id": "loki", "name": "Loki", "version": "3.0.0"}],
        "uid": format!("epost-{id}"),
        "title": str_of(d, "title"),
        "description": "Generated from deploy/dashboards/catalog.json (docs/dashboards.md); needs the shipper's Loki sink with structured metadata (Loki 3)",
        "tags": ["epost", "mail"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": [
            {"name": "DS_LOKI", "label": "Loki", "type": "datasource", "query": "loki", "current": {}, "hide": 0},
            {"name": "local_id", "label": "Message (B… id)", "type": "textbox", "query": "", "current": {"text": "", "value": ""}, "hide": 0}
        ]},
        "panels": panels
    })
}
