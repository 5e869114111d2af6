// Bundles the page into OUTDIR (default dist/): console.js (one ES module, minified), console.css
// (with the report's SVG rules, controller/report/report_svg.css, put in at its marker), index.html
// and icon.svg. Usage: node build.mjs [OUTDIR]
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
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
for (const f of ["index.html", "icon.svg"]) copyFileSync(join(here, "src", f), join(out, f));
// The SVG rules have one source, shared with the HTML report: never a copy in console.css.
const marker = /^\/\* @report-svg-css:.*\*\/$/m;
const css = readFileSync(join(here, "src/console.css"), "utf8");
if (!marker.test(css)) throw new Error("src/console.css has no @report-svg-css marker");
const svgCss = readFileSync(join(here, "../../controller/report/report_svg.css"), "utf8");
writeFileSync(join(out, "console.css"), css.replace(marker, () => svgCss.trimEnd()));
