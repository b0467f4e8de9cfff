// Parses LogQL expressions with Grafana's own grammar (@grafana/lezer-logql, what Grafana's
// Loki query editor uses) and reports, per expression, every error node of the parse tree.
// stdin: a JSON array of strings; stdout: a JSON array of
// {"expr", "top": [names of the top node's children], "errors": [{"from", "to", "text"}]}.
// tests/dashboards.rs runs it from the npm cache folder where `npm ci` installed the parser.
import { parser } from "@grafana/lezer-logql";

const input = await new Promise((resolve) => {
  let s = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (c) => (s += c));
  process.stdin.on("end", () => resolve(s));
});
const out = JSON.parse(input).map((expr) => {
  const tree = parser.parse(expr);
  const errors = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) {
        errors.push({ from: node.from, to: node.to, text: expr.slice(Math.max(0, node.from - 20), node.to + 20) });
      }
    },
  });
  const top = [];
  const c = tree.topNode.cursor();
  if (c.firstChild()) {
    do top.push(c.name);
    while (c.nextSibling());
  }
  return { expr, top, length: tree.length, errors };
});
process.stdout.write(JSON.stringify(out));
