// Runs the end-to-end tests one file at a time with the TAP reporter (its "# pass N" /
// "# fail N" lines are what scripts/test.sh sums up). Usage: `npm run e2e` from web/.
// Environment: DREAMGATE_BIN (default ../target/debug/dreamgate), CHROMIUM_BIN
// (default /usr/bin/chromium). Only 127.0.0.1 is used: it runs inside `unshare -n`.
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "node:test";
import { tap } from "node:test/reporters";

const dir = path.dirname(fileURLToPath(import.meta.url));
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".test.mjs"))
  .sort()
  .map((f) => path.join(dir, f));

const stream = run({ files, concurrency: 1, timeout: 10 * 60 * 1000 });
stream.on("test:fail", () => {
  process.exitCode = 1;
});
stream.compose(tap).pipe(process.stdout);
