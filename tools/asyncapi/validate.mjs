// Parses an AsyncAPI document with the official parser and prints every diagnostic.
// Exit status: 0 when no diagnostic has error severity, 1 when one has, 2 on a usage or read error.
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const SEVERITY = {
  [DiagnosticSeverity.Error]: "error",
  [DiagnosticSeverity.Warning]: "warning",
  [DiagnosticSeverity.Information]: "info",
  [DiagnosticSeverity.Hint]: "hint",
};

const path = process.argv[2];
if (!path) {
  console.error("usage: node validate.mjs <asyncapi-document.json>");
  process.exit(2);
}

let text;
try {
  text = await readFile(path, "utf-8");
} catch (error) {
  console.error(`cannot read ${path}: ${error.message}`);
  process.exit(2);
}

const { document, diagnostics } = await new Parser().parse(text, { source: path });
let errors = 0;
for (const diagnostic of diagnostics) {
  const severity = SEVERITY[diagnostic.severity] ?? String(diagnostic.severity);
  if (diagnostic.severity === DiagnosticSeverity.Error) errors += 1;
  console.log(`${severity}: ${diagnostic.message} @ ${diagnostic.path.join(".")} [${diagnostic.code}]`);
}
console.log(`${errors} error(s), ${diagnostics.length} diagnostic(s); document ${document ? "parsed" : "not produced"}`);
process.exit(errors > 0 || !document ? 1 : 0);
