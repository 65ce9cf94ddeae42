// Bundles the console into static/: hashed, minified, gzipped assets and the HTML shell.
// Run by scripts/console.sh (from `make install`); nothing here is committed.
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "static");
const assets = join(out, "assets");
const examples = join(here, "..", "examples");

// `import templates from "virtual:templates"`: every function in examples/, read at build time,
// so the editor opens on code the test suite proves works.
function readTree(dir, root = dir) {
  const files = {};
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) Object.assign(files, readTree(path, root));
    else files[relative(root, path)] = readFileSync(path, "utf8");
  }
  return files;
}

function exampleTemplates() {
  const byRuntime = {};
  for (const runtime of readdirSync(examples).sort()) {
    const folder = join(examples, runtime);
    if (!statSync(folder).isDirectory()) continue;
    const list = (byRuntime[runtime] = []);
    for (const entry of readdirSync(folder).sort()) {
      const path = join(folder, entry);
      if (statSync(path).isDirectory()) {
        const files = readTree(path);
        const settings = files["function.json"] ? JSON.parse(files["function.json"]) : {};
        delete files["function.json"];
        list.push({ name: entry, files, settings });
      } else if (!entry.endsWith(".wasm")) {
        const ext = entry.slice(entry.lastIndexOf("."));
        list.push({ name: entry.slice(0, -ext.length), files: { [`handler${ext}`]: readFileSync(path, "utf8") }, settings: {} });
      }
    }
  }
  return byRuntime;
}

const templatesPlugin = {
  name: "templates",
  setup(build) {
    build.onResolve({ filter: /^virtual:templates$/ }, () => ({ path: "templates", namespace: "virtual" }));
    build.onLoad({ filter: /.*/, namespace: "virtual" }, () => ({
      contents: JSON.stringify(exampleTemplates()),
      loader: "json",
    }));
  },
};

rmSync(out, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });
const result = await esbuild.build({
  entryPoints: { app: join(here, "src", "main.jsx"), style: join(here, "src", "style.css") },
  bundle: true,
  minify: process.env.CONSOLE_DEV !== "1",  // CONSOLE_DEV=1: readable stacks while debugging
  splitting: true,
  format: "esm",
  target: ["chrome110", "firefox110", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  entryNames: "[name]-[hash]",
  chunkNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  outdir: assets,
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
  plugins: [templatesPlugin],
});

const outputs = Object.entries(result.metafile.outputs);
const entry = (name) => {
  const found = outputs.find(([, o]) => o.entryPoint && basename(o.entryPoint).startsWith(name));
  return basename(found[0]);
};
const script = entry("main.jsx");
const style = outputs.find(([p]) => basename(p).startsWith("style-") && p.endsWith(".css"))[0];

// The functions list is the page most visits open: its chunks are preloaded beside the entry
// (fetched in parallel, run only when the list is shown), so lazy loading adds no round trip
// there. `closure` is the chunk and every chunk it imports statically.
const closure = (path, into = new Set()) => {
  if (into.has(path)) return into;
  into.add(path);
  for (const imp of result.metafile.outputs[path].imports) if (imp.kind === "import-statement") closure(imp.path, into);
  return into;
};
const entryPath = outputs.find(([p]) => basename(p) === script)[0];
const listPage = outputs.find(([, o]) => o.entryPoint && o.entryPoint.endsWith("pages/functions.jsx"))[0];
const firstLoad = closure(entryPath);
const preload = [...closure(listPage)].filter((p) => !firstLoad.has(p));
const preloadTags = preload.map((p) => `<link rel="modulepreload" href="/assets/${basename(p)}">`).join("\n");

// The shell: no inline script or style. `{{nonce}}` is replaced per response by the gateway
// (CodeMirror's style tags carry it; see gateway/api/resources/console.py).
const shell = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="csp-nonce" content="{{nonce}}">
<title>Nimbus console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/${basename(style)}">
<script type="module" src="/assets/${script}"></script>
${preloadTags}
</head>
<body>
<div id="app"><noscript>The Nimbus console needs JavaScript.</noscript></div>
</body>
</html>
`;
writeFileSync(join(out, "index.html"), shell);

let js = 0, css = 0, jsGz = 0, cssGz = 0;
for (const name of readdirSync(assets)) {
  const path = join(assets, name);
  const data = readFileSync(path);
  if (/\.(js|css|txt)$/.test(name)) writeFileSync(`${path}.gz`, gzipSync(data, { level: 9 }));
  if (name.endsWith(".js")) { js += data.length; jsGz += gzipSync(data).length; }
  if (name.endsWith(".css")) { css += data.length; cssGz += gzipSync(data).length; }
}
// The first load: the entry and every chunk it imports statically, plus the preloaded list
// page (other pages and tabs wait until they are opened).
let firstJs = 0, firstGz = 0;
const loadedFirst = [...firstLoad, ...preload];
for (const path of loadedFirst) {
  const data = readFileSync(join(assets, basename(path)));
  firstJs += data.length;
  firstGz += gzipSync(data, { level: 9 }).length;
}
const kb = (n) => (n / 1024).toFixed(1);
console.log(`console: ${kb(js)} KB JS (${kb(jsGz)} gz) and ${kb(css)} KB CSS (${kb(cssGz)} gz) in all; ` +
  `first load ${kb(firstJs)} KB JS (${kb(firstGz)} gz) in ${loadedFirst.length} file(s) -> ${relative(process.cwd(), out)}`);

