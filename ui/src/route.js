// Hash routes (#/runs?experiment=x): every page's state lives in its address, so a link
// or a reload shows the same thing, and the server serves one page.
import { useEffect, useState } from "preact/hooks";

// A malformed escape (#/runs/%) stays as typed rather than breaking the page.
function decoded(part) {
  try {
    return decodeURIComponent(part);
  } catch (_) {
    return part;
  }
}

export function parseHash(hash = location.hash) {
  const text = hash.replace(/^#/, "") || "/runs";
  const cut = text.indexOf("?");
  const [path, search] = cut < 0 ? [text, ""] : [text.slice(0, cut), text.slice(cut + 1)];
  const parts = path.split("/").filter(Boolean).map(decoded);
  return { parts, params: new URLSearchParams(search) };
}

export function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const changed = () => setRoute(parseHash());
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}

// "?a=1&b=x&b=y" from {a: 1, b: ["x", "y"]}, empty values left out; "" when none is left.
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) search.append(key, String(one));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export function href(path, params = {}) {
  return `#${path}${query(params)}`;
}

// Replace the address without a new history entry (typing in a filter box).
export function replaceHash(path, params) {
  history.replaceState(null, "", href(path, params));
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}
