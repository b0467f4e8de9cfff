//! Static checks of `deploy/` (no container engine runs here; deploy/README.md says what was
//! and was not run): every YAML parses, images are pinned (to the versions the sink tests run
//! against where there are some), every mounted file exists, Grafana's provisioning fits the
//! Loki service and the dashboards, and each README's `shipper.toml` snippet passes the real
//! `epost-shipper check`'s config validation and agrees with its stack (the port it publishes,
//! the index names the dashboards read, computed by the shipper's own code from its defaults).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use epost_shipper::config::{BUILTIN_LABELS, Config, SinkConfig};
use epost_shipper::kind::Kind;
use epost_shipper::sink::elasticsearch::BulkEncoder;
use serde_yaml_ng::Value as Yaml;

const STACKS: [&str; 3] = ["elasticsearch", "opensearch", "loki"];
/// The dashboards the stacks load (made apart from the stacks, on the `dash` branch).
const DASHBOARDS: [&str; 4] = [
    "dashboards/kibana.ndjson",
    "dashboards/opensearch-dashboards.ndjson",
    "dashboards/grafana/epost-mail-flow.json",
    "dashboards/grafana/epost-security.json",
];

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml(path: &Path) -> Yaml {
    serde_yaml_ng::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

fn compose(stack: &str) -> Yaml {
    yaml(&deploy().join(stack).join("compose.yaml"))
}

fn services(compose: &Yaml) -> Vec<(String, &Yaml)> {
    let m = compose
        .get("services")
        .and_then(Yaml::as_mapping)
        .expect("a compose file has `services`");
    m.iter()
        .map(|(k, v)| (k.as_str().expect("service name").to_string(), v))
        .collect()
}

fn strings(v: Option<&Yaml>) -> Vec<String> {
    v.and_then(Yaml::as_sequence)
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A dashboard file, or a failure that names it and says where it comes from.
fn dashboard(rel: &str) -> String {
    let p = deploy().join(rel);
    assert!(
        p.is_file(),
        "missing dashboard file deploy/{rel}: the stacks of deploy/ load it (it is made on the \
         `dash` branch; merge it)"
    );
    read(&p)
}

/// `KEY=VALUE` lines of tests/servers/versions.env.
fn server_versions() -> BTreeMap<String, String> {
    let text = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/versions.env"));
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn every_yaml_file_under_deploy_parses() {
    let mut found = Vec::new();
    let mut stack = vec![deploy()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read deploy/") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                let v = yaml(&p);
                assert!(v.is_mapping(), "{}: not a mapping at the top", p.display());
                found.push(p);
            }
        }
    }
    // 3 compose files, loki-config.yaml, 2 Grafana provisioning files
    assert!(
        found.len() >= 6,
        "only {} YAML files: {found:?}",
        found.len()
    );
}

#[test]
fn images_are_pinned_to_the_tested_server_versions() {
    let v = server_versions();
    let es = &v["ES_VERSION"];
    let os = &v["OPENSEARCH_VERSION"];
    let want: [(&str, &String); 4] = [
        ("docker.elastic.co/elasticsearch/elasticsearch", es),
        ("docker.elastic.co/kibana/kibana", es),
        ("opensearchproject/opensearch", os),
        ("opensearchproject/opensearch-dashboards", os),
    ];
    let mut seen = BTreeSet::new();
    for stack in STACKS {
        let c = compose(stack);
        for (name, s) in services(&c) {
            let image = s
                .get("image")
                .and_then(Yaml::as_str)
                .unwrap_or_else(|| panic!("{stack}/{name}: no image"));
            let (repo, tag) = image
                .rsplit_once(':')
                .filter(|(_, t)| !t.contains('/'))
                .unwrap_or_else(|| panic!("{stack}/{name}: image `{image}` has no tag"));
            assert!(
                tag != "latest" && tag.chars().next().is_some_and(|c| c.is_ascii_digit()),
                "{stack}/{name}: image `{image}` is not pinned to a version"
            );
            if let Some((_, version)) = want.iter().find(|(r, _)| *r == repo) {
                assert_eq!(
                    tag,
                    version.as_str(),
                    "{stack}/{name}: `{image}` is not the version of tests/servers/versions.env"
                );
                seen.insert(repo.to_string());
            }
        }
    }
    assert_eq!(seen.len(), want.len(), "images checked: {seen:?}");
}

/// The bind mounts of a service: (source on the host, target in the container).
fn binds(service: &Yaml) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for v in service
        .get("volumes")
        .and_then(Yaml::as_sequence)
        .into_iter()
        .flatten()
    {
        if let Some(s) = v.as_str() {
            let mut parts = s.split(':');
            let (src, dst) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if src.starts_with('.') || src.starts_with('/') {
                out.push((src.to_string(), dst.to_string()));
            }
        } else if v.get("type").and_then(Yaml::as_str) == Some("bind") {
            let get = |k: &str| v.get(k).and_then(Yaml::as_str).unwrap_or("").to_string();
            out.push((get("source"), get("target")));
        }
    }
    out
}

#[test]
fn every_mounted_file_and_every_dashboard_exists() {
    let mut missing = Vec::new();
    let mut mounts = 0;
    for stack in STACKS {
        let dir = deploy().join(stack);
        for (name, s) in services(&compose(stack)) {
            for (src, _) in binds(s) {
                mounts += 1;
                if !dir.join(&src).exists() {
                    missing.push(format!("deploy/{stack}/{src} (mounted by {stack}/{name})"));
                }
            }
        }
    }
    for d in DASHBOARDS {
        if !deploy().join(d).is_file() {
            missing.push(format!(
                "deploy/{d} (a dashboard the stacks load; made on the `dash` branch)"
            ));
        }
    }
    assert!(mounts >= 8, "only {mounts} bind mounts found");
    assert!(
        missing.is_empty(),
        "missing files:\n  {}",
        missing.join("\n  ")
    );
}

/// The (host, container) ports a service publishes.
fn published(service: &Yaml) -> Vec<(u16, u16)> {
    strings(service.get("ports"))
        .iter()
        .filter_map(|p| {
            let parts: Vec<&str> = p.split(':').collect();
            let n = parts.len();
            let host = parts.get(n.checked_sub(2)?)?.parse().ok()?;
            let container = parts.get(n - 1)?.split('/').next()?.parse().ok()?;
            Some((host, container))
        })
        .collect()
}

fn service<'a>(c: &'a Yaml, name: &str) -> &'a Yaml {
    c.get("services")
        .and_then(|s| s.get(name))
        .unwrap_or_else(|| panic!("no service `{name}`"))
}

fn loki_port() -> u16 {
    let cfg = yaml(&deploy().join("loki/loki-config.yaml"));
    cfg.get("server")
        .and_then(|s| s.get("http_listen_port"))
        .and_then(Yaml::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .expect("loki-config.yaml: server.http_listen_port")
}

/// Every `"uid"` of a `"datasource"` object in a Grafana dashboard.
fn datasource_uids(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "datasource"
                    && let Some(uid) = x.get("uid").and_then(|u| u.as_str())
                {
                    out.insert(uid.to_string());
                }
                datasource_uids(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| datasource_uids(x, out)),
        _ => {}
    }
}

#[test]
fn grafana_provisioning_fits_loki_and_the_dashboards() {
    let dir = deploy().join("loki");
    let c = compose("loki");
    let port = loki_port();
    assert!(
        published(service(&c, "loki"))
            .iter()
            .any(|&(_, ct)| ct == port),
        "the loki service does not publish loki-config.yaml's port {port}"
    );

    let ds = yaml(&dir.join("grafana/provisioning/datasources/loki.yaml"));
    let mut uids = BTreeSet::new();
    let mut default_loki = false;
    for d in ds
        .get("datasources")
        .and_then(Yaml::as_sequence)
        .expect("datasources")
    {
        default_loki |= d.get("isDefault").and_then(Yaml::as_bool) == Some(true);
        assert_eq!(d.get("type").and_then(Yaml::as_str), Some("loki"));
        let url = d.get("url").and_then(Yaml::as_str).expect("datasource url");
        assert_eq!(url, format!("http://loki:{port}"), "the data source's url");
        uids.insert(
            d.get("uid")
                .and_then(Yaml::as_str)
                .expect("uid")
                .to_string(),
        );
    }

    // the provider's folder is where the compose file mounts ../dashboards/grafana/*
    let prov = yaml(&dir.join("grafana/provisioning/dashboards/epost.yaml"));
    let path = prov
        .get("providers")
        .and_then(|p| p.get(0))
        .and_then(|p| p.get("options"))
        .and_then(|o| o.get("path"))
        .and_then(Yaml::as_str)
        .expect("providers[0].options.path");
    let grafana = service(&c, "grafana");
    let mounted: Vec<(String, String)> = binds(grafana)
        .into_iter()
        .filter(|(src, _)| src.starts_with("../dashboards/grafana/"))
        .collect();
    for d in DASHBOARDS
        .iter()
        .filter(|d| d.starts_with("dashboards/grafana/"))
    {
        let (_, target) = mounted
            .iter()
            .find(|(src, _)| src == &format!("../{d}"))
            .unwrap_or_else(|| panic!("grafana does not mount ../{d}"));
        assert_eq!(
            Path::new(target).parent(),
            Some(Path::new(path)),
            "../{d} is mounted outside the provider's folder {path}"
        );
    }
    for prov_dir in ["datasources", "dashboards"] {
        let target = format!("/etc/grafana/provisioning/{prov_dir}");
        assert!(
            binds(grafana)
                .iter()
                .any(|(s, t)| t == &target && s == &format!("./grafana/provisioning/{prov_dir}")),
            "grafana does not mount ./grafana/provisioning/{prov_dir} at {target}"
        );
    }

    for d in DASHBOARDS.iter().filter(|d| d.ends_with(".json")) {
        let json: serde_json::Value = serde_json::from_str(&dashboard(d))
            .unwrap_or_else(|e| panic!("deploy/{d}: not JSON: {e}"));
        let mut used = BTreeSet::new();
        datasource_uids(&json, &mut used);
        for uid in used {
            if let Some(var) = uid.strip_prefix('$') {
                // a data source variable of the dashboard (`${DS_LOKI}`): provisioning does
                // not fill `__inputs`, so it must be a `datasource` variable over Loki, which
                // picks the provisioned (default) Loki data source
                let var = var.trim_start_matches('{').trim_end_matches('}');
                let defined = json
                    .pointer("/templating/list")
                    .and_then(|l| l.as_array())
                    .into_iter()
                    .flatten()
                    .any(|v| {
                        v.get("name").and_then(|n| n.as_str()) == Some(var)
                            && v.get("type").and_then(|t| t.as_str()) == Some("datasource")
                            && v.get("query").and_then(|q| q.as_str()) == Some("loki")
                    });
                assert!(
                    defined,
                    "deploy/{d} uses `{uid}`, which is no Loki data source variable of its templating"
                );
                assert!(
                    default_loki,
                    "deploy/{d} picks its Loki through `{uid}`: the provisioned one must be the default"
                );
                continue;
            }
            // `-- Grafana --` is Grafana's own
            let builtin = uid == "-- Grafana --" || uid == "grafana";
            assert!(
                builtin || uids.contains(&uid),
                "deploy/{d} uses the data source uid `{uid}`; provisioned: {uids:?}"
            );
        }
    }
}

/// The one ```toml block of a README.
fn snippet(readme: &Path) -> String {
    let text = read(readme);
    let blocks: Vec<&str> = text
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .collect();
    assert_eq!(
        blocks.len(),
        1,
        "{}: want one ```toml block",
        readme.display()
    );
    blocks[0].to_string()
}

/// A README snippet made loadable here: the work folder is the example mail folder copied to
/// `scratch`, `state_dir` is in `scratch`, `file:` secrets a scratch file; `env:` secrets stay
/// (their names are returned, for the child's environment), or, with `env_as_file`, become
/// the scratch file too (this process cannot set its own environment safely).
fn mapped(text: &str, scratch: &Path, env_as_file: bool) -> (String, Vec<String>) {
    let mut doc: toml::Table = toml::from_str(text).expect("the snippet is TOML");
    let mail = scratch.join("mail");
    if !mail.exists() {
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mail"),
            &mail,
        );
    }
    let secret = scratch.join("secret");
    std::fs::write(&secret, "x").expect("write the scratch secret");
    let source = doc
        .get_mut("source")
        .and_then(|s| s.as_table_mut())
        .expect("[source]");
    assert!(source.contains_key("workdir"), "the snippet names workdir");
    let s = |p: &Path| toml::Value::String(p.display().to_string());
    source.insert("workdir".into(), s(&mail));
    source.insert("state_dir".into(), s(&scratch.join("state")));
    let mut envs = Vec::new();
    for sink in doc
        .get_mut("sink")
        .and_then(|s| s.as_array_mut())
        .expect("[[sink]]")
    {
        for (_, v) in sink.as_table_mut().expect("a sink table").iter_mut() {
            let Some(raw) = v.as_str() else { continue };
            if raw.starts_with("file:") || (env_as_file && raw.starts_with("env:")) {
                *v = toml::Value::String(format!("file:{}", secret.display()));
            } else if let Some(name) = raw.strip_prefix("env:") {
                envs.push(name.to_string());
            }
        }
    }
    (toml::to_string(&doc).expect("serialize"), envs)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read examples/mail") {
        let e = e.expect("dir entry");
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// The snippet of `deploy/<dir>/README.md`, loaded by the shipper's config code.
fn snippet_config(dir: &str, scratch: &Path) -> Config {
    let (text, _) = mapped(
        &snippet(&deploy().join(dir).join("README.md")),
        scratch,
        true,
    );
    let path = scratch.join("inprocess.toml");
    Config::from_str(&path, &text)
        .unwrap_or_else(|e| panic!("deploy/{dir}/README.md's snippet: {e}\n{text}"))
}

#[test]
fn every_readme_snippet_passes_check() {
    let bin = env!("CARGO_BIN_EXE_epost-shipper");
    for dir in ["elasticsearch", "opensearch", "loki", "systemd", "windows"] {
        let scratch = tempfile::tempdir().expect("tempdir");
        let (text, envs) = mapped(
            &snippet(&deploy().join(dir).join("README.md")),
            scratch.path(),
            false,
        );
        let cfg = scratch.path().join("shipper.toml");
        std::fs::write(&cfg, &text).expect("write the config");
        let mut cmd = Command::new(bin);
        cmd.args(["check", "--config"]).arg(&cfg);
        for e in &envs {
            cmd.env(e, "x");
        }
        let out = cmd.output().expect("run epost-shipper check");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // 2 is a config error; 1 is the sink not answering (docker-host.example is no host)
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "deploy/{dir}/README.md's snippet fails check ({:?}):\n{all}\n--- config:\n{text}",
            out.status
        );
        assert!(
            all.contains("config ") && all.contains(": OK"),
            "deploy/{dir}: check did not accept the config:\n{all}"
        );
    }
}

fn url_port(url: &str) -> u16 {
    url.rsplit_once(':')
        .and_then(|(_, p)| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("`{url}` names no port"))
}

/// Index patterns (`title`s of `index-pattern` saved objects; comma-separated lists split).
fn index_patterns(ndjson: &str) -> Vec<String> {
    ndjson
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|o| o.get("type").and_then(|t| t.as_str()) == Some("index-pattern"))
        .filter_map(|o| {
            o.pointer("/attributes/title")
                .and_then(|t| t.as_str())
                .map(str::to_string)
        })
        .flat_map(|t| {
            t.split(',')
                .map(|p| p.trim().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `*` globbing, as index patterns match.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

#[test]
fn search_stacks_agree_with_the_shipper_on_port_and_index_names() {
    for (stack, svc, ndjson) in [
        ("elasticsearch", "elasticsearch", "dashboards/kibana.ndjson"),
        (
            "opensearch",
            "opensearch",
            "dashboards/opensearch-dashboards.ndjson",
        ),
    ] {
        let scratch = tempfile::tempdir().expect("tempdir");
        let config = snippet_config(stack, scratch.path());
        let [sink] = &config.sinks[..] else {
            panic!("{stack}: want one sink")
        };
        let SinkConfig::Elasticsearch(es) = &sink.config else {
            panic!("{stack}: the snippet's sink is not elasticsearch")
        };
        let c = compose(stack);
        for url in es.url.list() {
            let port = url_port(&url);
            assert!(
                published(service(&c, svc)).contains(&(port, 9200)),
                "{stack}: the snippet's {url} is not the port {svc} publishes"
            );
        }
        let patterns = index_patterns(&dashboard(ndjson));
        assert!(
            !patterns.is_empty(),
            "deploy/{ndjson}: no index-pattern object"
        );
        // the names the shipper writes to with this config (day 20000: 2024-10-04)
        let enc = BulkEncoder::new(es.mode, &es.namespace, &es.index);
        for kind in Kind::ALL {
            let index = enc.index_for(kind, 20_000);
            assert!(
                patterns.iter().any(|p| glob(p, &index)),
                "{stack}: the shipper writes {kind:?} to `{index}`, which no index pattern of \
                 deploy/{ndjson} ({patterns:?}) matches"
            );
        }
    }
}

/// The label matchers (`name`, `value`) of the stream selectors in a Grafana dashboard's
/// queries (`expr`), e.g. `{job="epost", log=~"$kind"}`.
fn matchers(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "expr"
                    && let Some(e) = x.as_str()
                {
                    selector_matchers(e, out);
                }
                matchers(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| matchers(x, out)),
        _ => {}
    }
}

fn selector_matchers(expr: &str, out: &mut Vec<(String, String)>) {
    let Some((_, rest)) = expr.split_once('{') else {
        return;
    };
    let Some((inside, _)) = rest.split_once('}') else {
        return;
    };
    for m in inside.split(',') {
        let Some(op) = m.find(['=', '!']) else {
            continue;
        };
        let (name, value) = (m[..op].trim(), m[op..].trim_start_matches(['=', '!', '~']));
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push((name.to_string(), value.trim().trim_matches('"').to_string()));
        }
    }
}

#[test]
fn loki_stack_agrees_with_the_shipper_on_port_path_and_labels() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let config = snippet_config("loki", scratch.path());
    let [sink] = &config.sinks[..] else {
        panic!("loki: want one sink")
    };
    let SinkConfig::Loki(loki) = &sink.config else {
        panic!("loki: the snippet's sink is not loki")
    };
    let port = loki_port();
    assert!(
        published(service(&compose("loki"), "loki")).contains(&(url_port(&loki.url), port)),
        "the snippet's {} is not the port Loki listens on and publishes ({port})",
        loki.url
    );
    // Loki's push API path (a constant of Loki's HTTP API, not of the shipper)
    assert_eq!(loki.push_path, "/loki/api/v1/push");

    let mut used = Vec::new();
    for d in DASHBOARDS.iter().filter(|d| d.ends_with(".json")) {
        let json: serde_json::Value = serde_json::from_str(&dashboard(d))
            .unwrap_or_else(|e| panic!("deploy/{d}: not JSON: {e}"));
        matchers(&json, &mut used);
    }
    assert!(
        !used.is_empty(),
        "the Grafana dashboards have no stream selector"
    );
    for (name, value) in &used {
        assert!(
            BUILTIN_LABELS.contains(&name.as_str()) || loki.labels.contains_key(name),
            "a dashboard selects on the label `{name}`, which the shipper does not send \
             (it sends {BUILTIN_LABELS:?})"
        );
        if name == "job" && !value.starts_with('$') {
            assert_eq!(value, &loki.job, "a dashboard selects job=\"{value}\"");
        }
    }
}

#[test]
fn systemd_unit_runs_the_config_its_readme_writes() {
    let unit = read(&deploy().join("systemd/epost-shipper.service"));
    let field = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("the unit has no {key}="))
            .trim()
            .to_string()
    };
    for section in ["[Unit]", "[Service]", "[Install]"] {
        assert!(
            unit.lines().any(|l| l == section),
            "no {section} in the unit"
        );
    }
    let exec = field("ExecStart");
    let args: Vec<&str> = exec.split_whitespace().collect();
    let [program, "run", "--config", config] = args[..] else {
        panic!("ExecStart is not `<program> run --config <file>`: {exec}")
    };
    assert!(
        program.ends_with("/epost-shipper"),
        "ExecStart runs {program}"
    );
    let readme = read(&deploy().join("systemd/README.md"));
    assert!(
        readme.contains(&format!("sudoedit {config}")),
        "deploy/systemd/README.md does not write the unit's config {config}"
    );
    // the snippet's state_dir is the unit's StateDirectory
    let text = snippet(&deploy().join("systemd/README.md"));
    let doc: toml::Table = toml::from_str(&text).expect("TOML");
    let state = doc["source"]["state_dir"].as_str().expect("state_dir");
    assert_eq!(state, format!("/var/lib/{}", field("StateDirectory")));
}

#[test]
fn glob_matches_as_index_patterns_do() {
    assert!(glob("logs-epost.*", "logs-epost.inlog-default"));
    assert!(glob("logs-epost.*-*", "logs-epost.inlog-default"));
    assert!(!glob("logs-epost.*", "epost-inlog-2024.10.04"));
    assert!(glob("epost-*", "epost-inlog-2024.10.04"));
    assert!(!glob("logs-*-prod", "logs-epost.inlog-default"));
}
