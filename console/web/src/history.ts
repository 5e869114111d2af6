// History: runs with filters, a run's full report (its timeline SVG and every figure of the JSON
// report) and the trend of time to recover for its experiment.

import { getJson, getText } from "./api";
import { bracket, h, importSvg, replaceChildren, secs, verdictBadge, when } from "./dom";
import type { RunRow } from "./types";

interface ReportJson {
  experiment: string;
  run_id: string;
  verdict: string;
  objectives?: {
    name: string;
    verdict: string;
    target_s: number;
    time_to_detect_s: number | null;
    time_to_recover_s: number | null;
    time_to_recover_bracket_s?: [number, number] | null;
    availability?: number;
  }[];
}

async function svgInto(slot: HTMLElement, path: string): Promise<void> {
  try {
    replaceChildren(slot, importSvg(await getText(path)));
  } catch (err) {
    replaceChildren(slot, h("p", { className: "error" }, String(err instanceof Error ? err.message : err)));
  }
}

export function mountHistory(view: HTMLElement): () => void {
  const experiment = h("input", { id: "filter-experiment", type: "search", placeholder: "experiment", "aria-label": "Experiment" });
  const verdict = h(
    "select",
    { id: "filter-verdict", "aria-label": "Verdict" },
    ...["", "PASS", "FAIL", "ABORTED", "ERROR"].map((v) => h("option", { value: v }, v || "any verdict")),
  );
  const limit = h("input", { id: "filter-limit", type: "number", min: 1, max: 500, value: 100, "aria-label": "Limit" });
  const form = h("form", { className: "inline-form filters" }, experiment, verdict, limit, h("button", { type: "submit" }, "Filter"));
  const rows = h("tbody");
  const status = h("p", { className: "meta", role: "status" });
  const detail = h("section", { id: "run-detail" });
  replaceChildren(
    view,
    h("h1", {}, "History"),
    form,
    status,
    h(
      "table",
      { id: "runs" },
      h("thead", {}, h("tr", {}, h("th", {}, "run"), h("th", {}, "experiment"), h("th", {}, "verdict"), h("th", {}, "started"), h("th", {}, "detect"), h("th", {}, "recover"))),
      rows,
    ),
    detail,
  );

  const showRun = async (row: RunRow): Promise<void> => {
    const timeline = h("div", { className: "timeline", id: "report-timeline" });
    const trend = h("div", { className: "timeline", id: "trend" });
    const summary = h("div");
    const raw = h("pre", { className: "raw" });
    replaceChildren(
      detail,
      h("h2", {}, `Run ${row.run_id} `, verdictBadge(row.verdict)),
      summary,
      timeline,
      h("h3", {}, `Time to recover, ${row.experiment}`),
      trend,
      h("details", {}, h("summary", {}, "Full report (JSON)"), raw),
    );
    const id = encodeURIComponent(row.run_id);
    void svgInto(timeline, `/api/runs/${id}/timeline.svg`);
    void svgInto(trend, `/api/trend.svg?experiment=${encodeURIComponent(row.experiment)}`);
    try {
      const report = await getJson<ReportJson>(`/api/runs/${id}`);
      raw.textContent = JSON.stringify(report, null, 2);
      replaceChildren(
        summary,
        h(
          "table",
          { className: "report-objectives" },
          h("thead", {}, h("tr", {}, h("th", {}, "objective"), h("th", {}, "verdict"), h("th", {}, "target"), h("th", {}, "detect"), h("th", {}, "recover"), h("th", {}, "bracket"))),
          h(
            "tbody",
            {},
            ...(report.objectives ?? []).map((o) =>
              h("tr", {}, h("td", {}, o.name), h("td", {}, verdictBadge(o.verdict)), h("td", {}, secs(o.target_s)), h("td", {}, secs(o.time_to_detect_s)), h("td", {}, secs(o.time_to_recover_s)), h("td", {}, bracket(o.time_to_recover_bracket_s))),
            ),
          ),
        ),
      );
    } catch (err) {
      replaceChildren(summary, h("p", { className: "error" }, String(err instanceof Error ? err.message : err)));
    }
  };

  const load = async (): Promise<void> => {
    const q = new URLSearchParams();
    if (experiment.value.trim()) q.set("experiment", experiment.value.trim());
    if (verdict.value) q.set("verdict", verdict.value);
    q.set("limit", String(Math.max(1, Math.min(500, Number(limit.value) || 100))));
    status.textContent = "Loading…";
    try {
      const list = await getJson<RunRow[]>(`/api/runs?${q.toString()}`);
      status.textContent = `${list.length} run${list.length === 1 ? "" : "s"}`;
      replaceChildren(
        rows,
        ...list.map((r) => {
          const open = h("button", { type: "button", className: "link" }, r.run_id.slice(0, 12));
          open.addEventListener("click", () => void showRun(r));
          return h(
            "tr",
            { "data-run": r.run_id },
            h("td", {}, open),
            h("td", {}, r.experiment),
            h("td", {}, verdictBadge(r.verdict)),
            h("td", {}, when(r.started_at)),
            h("td", {}, secs(r.ttd_s)),
            h("td", {}, secs(r.ttr_s), r.recover_bracket ? h("span", { className: "muted" }, ` ${bracket(r.recover_bracket)}`) : null),
          );
        }),
      );
    } catch (err) {
      status.textContent = String(err instanceof Error ? err.message : err);
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void load();
  });
  void load();
  return () => {};
}
