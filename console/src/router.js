// Hash routes (#/functions/NAME/test…): deep links work with one HTML shell at `/`.
import { useEffect, useState } from "preact/hooks";

export function parseHash(hash = location.hash) {
  const [path, search = ""] = hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: Object.fromEntries(new URLSearchParams(search)) };
}

export function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const update = () => setRoute(parseHash());
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return route;
}

export const href = (...parts) => "#/" + parts.map(encodeURIComponent).join("/");
export const go = (...parts) => { location.hash = href(...parts); };
