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
      // The registry's facts win (kind, default handler, memory floor); the built-in list
      // only adds labels, so a runtime the server registers needs no console edit.
      RUNTIMES = list.map((r) => {
        const known = runtime(r.name);
        const binary = r.kind ? r.kind === "binary" : !known.source;
        const accept = known.accept !== undefined ? known.accept : r.extension ? `.${r.extension}` : "";
        return {
          ...known, ...r, label: known.label || r.description || r.name, source: !binary, accept,
          extension: r.extension || known.extension,
          handler: r.default_handler !== undefined ? r.default_handler : known.handler,
          memoryFloor: r.memory_floor_mb,
        };
      });
      return RUNTIMES;
    },
    () => RUNTIMES,
  ));
}
