// The AsyncAPI project's own parser on a document: exit 0 when it has no error (warnings and
// hints are printed, one JSON line each).
import { Parser, fromFile } from "@asyncapi/parser";

const { document, diagnostics } = await fromFile(new Parser(), process.argv[2]).parse();
for (const d of diagnostics) {
  console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message,
                               path: d.path.join("/") }));
}
process.exit(document && !diagnostics.some((d) => d.severity === 0) ? 0 : 1);
