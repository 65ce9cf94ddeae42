// CodeMirror 6, loaded on first use (its own chunk): languages per file extension load
// lazily too, so the list page never pays for the editor.
import { basicSetup } from "codemirror";
import { Annotation, Compartment, EditorState } from "@codemirror/state";
import { EditorView, keymap } from "@codemirror/view";
import { indentWithTab } from "@codemirror/commands";
import { lintGutter, setDiagnostics } from "@codemirror/lint";
import { oneDark } from "@codemirror/theme-one-dark";

const languages = {
  py: () => import("@codemirror/lang-python").then((m) => m.python()),
  js: () => import("@codemirror/lang-javascript").then((m) => m.javascript()),
  mjs: () => import("@codemirror/lang-javascript").then((m) => m.javascript()),
  cjs: () => import("@codemirror/lang-javascript").then((m) => m.javascript()),
  ts: () => import("@codemirror/lang-javascript").then((m) => m.javascript({ typescript: true })),
  json: () => import("@codemirror/lang-json").then((m) => m.json()),
  rs: () => import("@codemirror/lang-rust").then((m) => m.rust()),
  go: () => import("@codemirror/lang-go").then((m) => m.go()),
  c: () => import("@codemirror/lang-cpp").then((m) => m.cpp()),
  h: () => import("@codemirror/lang-cpp").then((m) => m.cpp()),
  cc: () => import("@codemirror/lang-cpp").then((m) => m.cpp()),
  cpp: () => import("@codemirror/lang-cpp").then((m) => m.cpp()),
};

export async function languageFor(filename) {
  const ext = (filename.split(".").pop() || "").toLowerCase();
  return languages[ext] ? languages[ext]() : [];
}

// Marks the transactions setDoc makes: a document the page pushed in is not echoed back to it
// as an edit (an echo into the page's state re-ran setDoc with a stale value: an endless loop).
const fromPage = Annotation.define();

const cspNonce = () => document.querySelector('meta[name="csp-nonce"]')?.content || "";
const dark = () => document.documentElement.dataset.theme === "dark";

/** One editor: `update` swaps document/language without losing the view. */
export function createEditor(parent, { doc, onChange, label, readOnly = false }) {
  const language = new Compartment();
  const theme = new Compartment();
  const editable = new Compartment();
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        basicSetup,
        keymap.of([indentWithTab]),
        lintGutter(),
        EditorView.cspNonce.of(cspNonce()),
        EditorView.contentAttributes.of({ "aria-label": label || "code editor" }),
        language.of([]),
        theme.of(dark() ? oneDark : []),
        editable.of(EditorState.readOnly.of(readOnly)),
        EditorView.updateListener.of((u) => {
          const edited = u.docChanged && !u.transactions.some((t) => t.annotation(fromPage));
          if (edited && onChange) onChange(u.state.doc.toString());
        }),
      ],
    }),
  });
  return {
    view,
    async setLanguage(filename) {
      view.dispatch({ effects: language.reconfigure(await languageFor(filename)) });
    },
    setDoc(text) {
      if (text !== view.state.doc.toString()) {
        view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text }, annotations: fromPage.of(true) });
      }
    },
    setTheme() { view.dispatch({ effects: theme.reconfigure(dark() ? oneDark : []) }); },
    /** Mark build errors: [{line, column?, message}] (1-based lines). */
    mark(errors) {
      const doc = view.state.doc;
      const diagnostics = errors
        .filter((e) => e.line >= 1 && e.line <= doc.lines)
        .map((e) => {
          const line = doc.line(e.line);
          const from = Math.min(line.from + Math.max(0, (e.column || 1) - 1), line.to);
          return { from, to: Math.max(from, line.to), severity: "error", message: e.message };
        });
      view.dispatch(setDiagnostics(view.state, diagnostics));
      if (diagnostics.length) {
        view.dispatch({ selection: { anchor: diagnostics[0].from }, scrollIntoView: true });
      }
    },
    destroy() { view.destroy(); },
  };
}
