// Code split by page and tab: a page's module is fetched the first time it is shown, so the
// first load carries the shell alone (numbers in docs/decisions/0019-web-console.md).
import { useEffect, useState } from "preact/hooks";
import { Notice } from "./components.jsx";

const loaded = new Map();

/** A component that renders what `load()` resolves to (a component), once it has arrived. */
export function lazy(load) {
  return function Lazy(props) {
    const [Component, setComponent] = useState(() => loaded.get(load));
    const [error, setError] = useState(null);
    useEffect(() => {
      if (Component) return;
      load().then((c) => { loaded.set(load, c); setComponent(() => c); }, setError);
    }, []);
    if (error) return <Notice>This page could not be loaded ({error.message}). Reload to try again.</Notice>;
    return Component ? <Component {...props} /> : <p class="muted">Loading…</p>;
  };
}
