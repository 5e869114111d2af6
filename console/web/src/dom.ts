// Building the page without HTML strings: elements from calls, SVG from the server parsed as XML
// and imported (the CSP allows no inline script or style, and nothing here uses innerHTML).

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;

// An element with attributes (`on*` functions become listeners; false/null are left out).
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === "function") {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === "className") {
      el.className = String(v);
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
}

export function replaceChildren(parent: Element, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, ...children);
}

// The server's SVG (the report's renderer) as a node of this document. Scripts, event handler
// attributes and foreign objects are dropped: the picture needs none of them. Throws on markup
// that is not well-formed SVG.
export function importSvg(markup: string): SVGSVGElement {
  const doc = new DOMParser().parseFromString(markup, "image/svg+xml");
  const root = doc.documentElement;
  if (root.nodeName !== "svg" || doc.getElementsByTagName("parsererror").length > 0) {
    throw new Error("the server sent a picture that is not SVG");
  }
  for (const bad of Array.from(root.querySelectorAll("script, foreignObject"))) bad.remove();
  for (const el of Array.from(root.querySelectorAll("*")).concat(root)) {
    for (const a of Array.from(el.attributes)) {
      if (/^on/i.test(a.name) || a.name === "style") el.removeAttribute(a.name);
    }
  }
  return document.importNode(root, true) as unknown as SVGSVGElement;
}

// Seconds as a person reads them: "850 ms", "12.4 s", "15 m 3 s".
export function secs(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return "—";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  const t = Math.round(s);
  const hh = Math.floor(t / 3600);
  const mm = Math.floor((t % 3600) / 60);
  const ss = t % 60;
  return [hh ? `${hh} h` : "", mm ? `${mm} m` : "", ss ? `${ss} s` : ""].filter(Boolean).join(" ");
}

export function bracket(b: [number, number] | null | undefined): string {
  return b ? `[${b[0].toFixed(2)} s, ${b[1].toFixed(2)} s]` : "";
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function verdictBadge(v: string | null | undefined): HTMLElement {
  const text = v ?? "running";
  return h("span", { className: `badge ${text.toLowerCase()}` }, text);
}
