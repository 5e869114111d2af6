// Bundles the page into OUTDIR (default dist/): console.js (one ES module, minified), console.css,
// index.html and icon.svg. Usage: node build.mjs [OUTDIR]
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, "dist"));
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "src/main.ts")],
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  sourcemap: false,
  legalComments: "none",
  outfile: join(out, "console.js"),
  logLevel: "warning",
});
for (const f of ["index.html", "console.css", "icon.svg"]) copyFileSync(join(here, "src", f), join(out, f));
