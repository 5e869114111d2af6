// Fleet: every agent with its labels, capabilities, health and active faults, whose evidence
// counters update with the stream's `fleet` events.

import { getJson } from "./api";
import { h, replaceChildren, secs } from "./dom";
import { store } from "./store";
import type { Agent } from "./types";

function row(a: Agent): HTMLElement {
  return h(
    "tr",
    { className: `agent ${a.health}`, "data-agent": a.id },
    h("td", {}, h("strong", {}, a.id), h("div", { className: "muted" }, a.address)),
    h("td", {}, ...Object.entries(a.labels).map(([k, v]) => h("span", { className: "chip" }, `${k}=${v}`))),
    h("td", {}, a.capabilities.join(", ")),
    h("td", { className: `health ${a.health}` }, a.health, h("div", { className: "muted" }, `seen ${secs(a.last_seen_s)} ago`)),
    h(
      "td",
      {},
      a.active_faults.length
        ? h(
            "ul",
            { className: "active-faults" },
            ...a.active_faults.map((f) =>
              h(
                "li",
                { "data-fault": f.fault_id },
                h("strong", {}, f.kind),
                ` ${f.fault_id}${f.workload ? ` in ${f.workload}` : ""} (run ${f.run_id.slice(0, 8)}) `,
                ...Object.entries(f.evidence).map(([k, v]) => h("span", { className: "counter", "data-key": k }, `${k} ${v}`)),
              ),
            ),
          )
        : h("span", { className: "muted" }, "none"),
    ),
  );
}

export function mountFleet(view: HTMLElement): () => void {
  const body = h("tbody");
  const summary = h("p", { className: "meta" });
  replaceChildren(
    view,
    h("h1", {}, "Fleet"),
    summary,
    h(
      "table",
      { id: "fleet" },
      h("thead", {}, h("tr", {}, h("th", {}, "agent"), h("th", {}, "labels"), h("th", {}, "capabilities"), h("th", {}, "health"), h("th", {}, "active faults and evidence"))),
      body,
    ),
  );
  const draw = (): void => {
    const agents = store.agents ?? [];
    const attached = agents.filter((a) => a.health === "attached").length;
    const faults = agents.reduce((n, a) => n + a.active_faults.length, 0);
    summary.textContent = `${agents.length} agents, ${attached} attached, ${faults} active faults`;
    replaceChildren(body, ...[...agents].sort((a, b) => a.id.localeCompare(b.id)).map(row));
  };
  const off = store.on("fleet", draw);
  draw();
  getJson<{ agents: Agent[] }>("/api/fleet").then(
    (f) => {
      store.agents = f.agents;
      store.emit("fleet");
    },
    (err: unknown) => (summary.textContent = String(err)),
  );
  return off;
}
