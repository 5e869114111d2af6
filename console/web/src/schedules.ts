// Schedules: the next firing, missed firings with their reasons, and pause/resume.

import { ApiError, getJson, post } from "./api";
import { h, replaceChildren, when } from "./dom";
import type { Schedule } from "./types";

export function mountSchedules(view: HTMLElement): () => void {
  const rows = h("tbody");
  const status = h("p", { id: "schedule-status", className: "meta", role: "status" });
  replaceChildren(
    view,
    h("h1", {}, "Schedules"),
    status,
    h(
      "table",
      { id: "schedules" },
      h("thead", {}, h("tr", {}, h("th", {}, "schedule"), h("th", {}, "experiment"), h("th", {}, "cron"), h("th", {}, "next firing"), h("th", {}, "missed firings"), h("th", {}, ""))),
      rows,
    ),
  );
  const load = async (): Promise<void> => {
    try {
      const list = await getJson<Schedule[]>("/api/schedules");
      if (!status.classList.contains("error")) status.textContent = `${list.length} schedule${list.length === 1 ? "" : "s"}`;
      replaceChildren(
        rows,
        ...list.map((s) => {
          const action = s.paused ? "resume" : "pause";
          const b = h("button", { type: "button", "data-action": action }, s.paused ? "Resume" : "Pause");
          b.addEventListener("click", async () => {
            b.disabled = true;
            status.classList.remove("error");
            try {
              await post(`/api/schedules/${encodeURIComponent(s.name)}/${action}`, {});
              status.textContent = `${s.name} ${action === "pause" ? "paused" : "resumed"}`;
            } catch (err) {
              status.classList.add("error");
              status.textContent = err instanceof ApiError ? `Refused (${err.status}): ${err.message}` : String(err);
            }
            await load();
          });
          return h(
            "tr",
            { "data-schedule": s.name, className: s.paused ? "paused" : "" },
            h("td", {}, s.name, s.paused ? h("span", { className: "chip" }, "paused") : null),
            h("td", {}, s.experiment),
            h("td", {}, h("code", {}, s.cron)),
            h("td", {}, s.paused ? "— (paused)" : when(s.next_firing)),
            h("td", {}, s.missed.length ? h("ul", {}, ...s.missed.map((m) => h("li", {}, `${when(m.at)}: ${m.reason}`))) : h("span", { className: "muted" }, "none")),
            h("td", {}, b),
          );
        }),
      );
    } catch (err) {
      status.textContent = String(err instanceof Error ? err.message : err);
    }
  };
  void load();
  return () => {};
}
