// What the console knows of each runtime. GET /api/v1/runtimes (the runtime registry)
// replaces this list when the server has it; until then these facts mirror DESIGN.md.
import { api, hasRoute } from "./api.js";

export let RUNTIMES = [
  { name: "python", label: "Python", source: true, extension: "py", handler: "handler.main" },
  { name: "javascript", label: "JavaScript", source: true, extension: "js", handler: "handler.main" },
  { name: "go", label: "Go", source: true, extension: "go" },
  { name: "rust", label: "Rust", source: true, extension: "rs" },
  { name: "c", label: "C", source: true, extension: "c" },
  { name: "wasm", label: "WebAssembly (.wasm upload)", source: false, accept: ".wasm" },
  { name: "native", label: "Native Linux binary (upload)", source: false, accept: "" },
];

export const runtime = (name) => RUNTIMES.find((r) => r.name === name) || { name, label: name, source: true };

let loaded;
/** Ask the server once; keep the built-in list when it has no registry route. */
export function loadRuntimes() {
  return (loaded ||= hasRoute("/api/v1/runtimes").then((has) => (has ? api.get("/api/v1/runtimes") : null)).then(
    (data) => {
      const list = Array.isArray(data) ? data : data && data.runtimes;
      if (!Array.isArray(list) || !list.length) return RUNTIMES;
      RUNTIMES = list.map((r) => {
        const known = runtime(r.name);
        const binary = r.binary !== undefined ? Boolean(r.binary) : !known.source;
        return { ...known, ...r, label: known.label || r.name, source: !binary, extension: r.extension || r.file_extension || known.extension };
      });
      return RUNTIMES;
    },
    () => RUNTIMES,
  ));
}
