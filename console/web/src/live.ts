// Live run: the server's timeline SVG as the run happens, the phase, elapsed time against each
// objective, the detect and recover markers with their brackets, the faults and the annotations.
// The view's parts are built once per run and updated in place, so typing a note is never
// interrupted by an update.

import { ApiError, getText, post } from "./api";
import { bracket, h, importSvg, replaceChildren, secs, verdictBadge, when } from "./dom";
import { store } from "./store";
import type { Annotation, Marker, RunState } from "./types";

const PHASES: RunState["phase"][] = ["preflight", "baseline", "fault", "recovery", "done"];

function markerText(name: string, m: Marker | null): HTMLElement {
  return h(
    "div",
    { className: `marker-line ${name}`, id: `${name}-marker` },
    h("span", { className: `swatch ${name}` }),
    m
      ? `${name} at +${m.at_s.toFixed(2)} s, truth in ${bracket(m.bracket)}`
      : `${name}: not yet`,
  );
}

class LiveRunPanel {
  readonly root: HTMLElement;
  private head = h("div", { className: "run-head" });
  private phases = h("ol", { className: "phases", "aria-label": "phase" });
  private objectives = h("tbody");
  private markers = h("div", { className: "markers" });
  private faults = h("ul", { className: "faults" });
  private timeline = h("div", { id: "live-timeline", className: "timeline" });
  private notes = h("ol", { id: "annotations", className: "annotations" });
  private noteError = h("p", { id: "annotation-error", className: "error", role: "alert" });
  private lastSvg = "";

  constructor(readonly runId: string) {
    const input = h("input", {
      id: "annotation-text",
      type: "text",
      maxlength: 500,
      required: true,
      placeholder: "paged on-call · failover started by hand",
      "aria-label": "Annotation",
    });
    const form = h(
      "form",
      { id: "annotation-form", className: "inline-form" },
      input,
      h("button", { type: "submit" }, "Add note"),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      this.noteError.textContent = "";
      try {
        const a = await post<Annotation>(`/api/runs/${encodeURIComponent(runId)}/annotations`, { text });
        input.value = "";
        if (a && a.run_id) store.addAnnotation(a);
      } catch (err) {
        this.noteError.textContent =
          err instanceof ApiError ? `Refused (${err.status}): ${err.message}` : String(err);
      }
    });
    this.root = h(
      "section",
      { className: "live-run", "data-run": runId },
      this.head,
      this.phases,
      h(
        "div",
        { className: "live-grid" },
        h(
          "div",
          {},
          h("h3", {}, "Objectives"),
          h(
            "table",
            { id: "objectives" },
            h(
              "thead",
              {},
              h("tr", {}, h("th", {}, "objective"), h("th", {}, "kind"), h("th", {}, "elapsed / limit"), h("th", {}, "state")),
            ),
            this.objectives,
          ),
          this.markers,
        ),
        h("div", {}, h("h3", {}, "Faults"), this.faults),
      ),
      h("h3", {}, "Timeline"),
      this.timeline,
      h("h3", {}, "Annotations"),
      this.notes,
      form,
      this.noteError,
    );
    this.update();
  }

  update(): void {
    const r = store.runs.get(this.runId);
    if (!r) return;
    replaceChildren(
      this.head,
      h("h2", {}, r.experiment, " ", verdictBadge(r.verdict)),
      h(
        "p",
        { className: "meta" },
        "run ",
        h("code", {}, r.run_id),
        ` · started ${when(r.started_at)} · elapsed `,
        h("span", { id: "elapsed", className: "big-number" }, secs(r.elapsed_s)),
        " · samples ",
        h("span", { id: "samples", className: "big-number" }, String(r.samples)),
      ),
    );
    replaceChildren(
      this.phases,
      ...PHASES.map((p) =>
        h(
          "li",
          { className: p === r.phase ? "current" : "", "aria-current": p === r.phase ? "step" : null, "data-phase": p },
          p,
        ),
      ),
    );
    replaceChildren(
      this.objectives,
      ...r.objectives.map((o) =>
        h(
          "tr",
          { className: `objective ${o.state}`, "data-objective": o.name },
          h("td", {}, o.name),
          h("td", {}, o.kind),
          h(
            "td",
            {},
            h("meter", {
              min: 0,
              max: o.limit_s,
              value: Math.min(o.elapsed_s, o.limit_s),
              high: o.limit_s * 0.8,
              optimum: 0,
              "aria-label": `${o.name}: ${secs(o.elapsed_s)} of ${secs(o.limit_s)}`,
            }),
            ` ${secs(o.elapsed_s)} / ${secs(o.limit_s)}`,
          ),
          h("td", { className: `state ${o.state}` }, o.state),
        ),
      ),
    );
    replaceChildren(this.markers, markerText("detect", r.detect), markerText("recover", r.recover));
    replaceChildren(
      this.faults,
      ...(r.faults.length
        ? r.faults.map((f) =>
            h(
              "li",
              { className: f.end_s === null ? "fault open" : "fault" },
              `${f.target} on ${f.host}${f.workload ? ` (${f.workload})` : ""}: from +${f.start_s.toFixed(2)} s `,
              f.end_s === null ? "— active" : `to +${f.end_s.toFixed(2)} s`,
            ),
          )
        : [h("li", { className: "muted" }, "no fault applied yet")]),
    );
    this.drawTimeline();
    this.drawNotes();
  }

  drawTimeline(): void {
    const svg = store.timelines.get(this.runId);
    if (!svg || svg === this.lastSvg) return;
    this.lastSvg = svg;
    try {
      replaceChildren(this.timeline, importSvg(svg));
    } catch (err) {
      replaceChildren(this.timeline, h("p", { className: "error" }, String(err)));
    }
  }

  drawNotes(): void {
    const list = store.annotations.get(this.runId) ?? [];
    replaceChildren(
      this.notes,
      ...list.map((a) => h("li", {}, h("span", { className: "at" }, `+${a.at_s.toFixed(1)} s`), ` ${a.author}: ${a.text}`)),
    );
  }

  async loadTimeline(): Promise<void> {
    if (store.timelines.has(this.runId)) return;
    try {
      const svg = await getText(`/api/runs/${encodeURIComponent(this.runId)}/timeline.svg`);
      if (!store.timelines.has(this.runId)) {
        store.timelines.set(this.runId, svg);
        this.drawTimeline();
      }
    } catch {
      // The stream sends it within a second while the run is active.
    }
  }
}

// The Live page. Returns a function that detaches it.
export function mountLive(view: HTMLElement): () => void {
  let panel: LiveRunPanel | null = null;
  let chosen: string | null = null;
  const tabs = h("nav", { className: "run-tabs", "aria-label": "runs" });
  const body = h("div");
  const startForm = startRunForm();
  replaceChildren(view, h("h1", {}, "Live run"), tabs, body, startForm);

  const current = (): RunState | null => {
    const runs = Array.from(store.runs.values());
    if (chosen && store.runs.has(chosen)) return store.runs.get(chosen)!;
    // The newest active run, else the newest that ended while the page was open.
    const active = runs.filter((r) => r.verdict === null);
    const pick = (active.length ? active : runs).sort((a, b) => a.started_at.localeCompare(b.started_at));
    return pick.length ? pick[pick.length - 1] : null;
  };
  const draw = (): void => {
    const runs = Array.from(store.runs.values());
    replaceChildren(
      tabs,
      ...(runs.length > 1
        ? runs.map((r) => {
            const b = h("button", { type: "button", "aria-pressed": r.run_id === current()?.run_id ? "true" : "false" }, `${r.experiment} ${r.run_id.slice(0, 8)}`, " ", verdictBadge(r.verdict));
            b.addEventListener("click", () => {
              chosen = r.run_id;
              draw();
            });
            return b;
          })
        : []),
    );
    const r = current();
    if (!r) {
      panel = null;
      replaceChildren(body, h("p", { id: "no-run", className: "muted big" }, "No run is active."));
      return;
    }
    if (!panel || panel.runId !== r.run_id) {
      panel = new LiveRunPanel(r.run_id);
      replaceChildren(body, panel.root);
      void panel.loadTimeline();
    } else {
      panel.update();
    }
  };
  const offs = [
    store.on("runs", draw),
    store.on("timeline", () => panel?.drawTimeline()),
    store.on("annotations", () => panel?.drawNotes()),
  ];
  draw();
  return () => offs.forEach((off) => off());
}

// Operators start a run by pasting its experiment; the controller applies the team policy.
function startRunForm(): HTMLElement {
  const text = h("textarea", {
    id: "experiment-yaml",
    rows: 10,
    spellcheck: "false",
    "aria-label": "Experiment (YAML)",
  });
  const result = h("p", { id: "start-result", role: "status" });
  const button = h("button", { id: "start-run", type: "submit" }, "Start run");
  const form = h("form", { id: "start-form" }, text, button, result);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    result.className = "";
    result.textContent = "Starting…";
    try {
      const started = await post<{ run_id: string }>("/api/runs", { experiment: text.value });
      result.textContent = `Started run ${started?.run_id ?? ""}`;
    } catch (err) {
      result.className = "error";
      result.textContent = err instanceof ApiError ? `Refused (${err.status}): ${err.message}` : String(err);
    }
  });
  return h("details", { className: "start-run" }, h("summary", {}, "Start a run"), form);
}
