#!/usr/bin/env bash
# The one-shot `setup` service of compose.yaml: passwords, the shipper's role and user, and
# the Kibana dashboards. Idempotent (PUT/POST that overwrite).
set -euo pipefail
ES=http://elasticsearch:9200
KB=http://kibana:5601
auth=(-u "elastic:$ELASTIC_PASSWORD")
say() { echo "setup: $*"; }

curl -fsS "${auth[@]}" -H 'Content-Type: application/json' -X POST \
    "$ES/_security/user/kibana_system/_password" -d "{\"password\":\"$KIBANA_PASSWORD\"}" >/dev/null
say "kibana_system password set"

# What the shipper does (docs/sinks/elasticsearch.md): GET / and _nodes (monitor), its index
# template (manage_index_templates), _bulk create into logs-epost.<kind>-<namespace>.
curl -fsS "${auth[@]}" -H 'Content-Type: application/json' -X PUT "$ES/_security/role/epost_writer" -d '{
  "cluster": ["monitor", "manage_index_templates"],
  "indices": [{ "names": ["logs-epost.*", "epost-*"],
                "privileges": ["create_doc", "create_index", "auto_configure", "view_index_metadata"] }]
}' >/dev/null
curl -fsS "${auth[@]}" -H 'Content-Type: application/json' -X PUT "$ES/_security/user/epost" \
    -d "{\"password\":\"$EPOST_PASSWORD\",\"roles\":[\"epost_writer\"],\"full_name\":\"epost-shipper\"}" >/dev/null
say "user epost (role epost_writer) ready"

for _ in $(seq 1 90); do
    curl -fsS "${auth[@]}" "$KB/api/status" >/dev/null 2>&1 && break
    sleep 5
done
curl -fsS "${auth[@]}" -H 'kbn-xsrf: true' -X POST "$KB/api/saved_objects/_import?overwrite=true" \
    --form file=@/setup/kibana.ndjson
echo
say "dashboards imported into Kibana"
