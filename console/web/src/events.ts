// The server-sent event stream: one EventSource per page, reopened after the server closed it
// (a restart) unless the session is gone, in which case the login page is shown.

import { ApiError, getJson, getText } from "./api";
import { store } from "./store";
import type { Agent, Annotation, Halt, Hello, Me, RunState } from "./types";

let source: EventSource | null = null;
let retry: number | undefined;

function parse<T>(e: Event): T {
  return JSON.parse((e as MessageEvent<string>).data) as T;
}

export function connectEvents(onSignedOut: () => void): void {
  disconnectEvents();
  const es = new EventSource("/api/events");
  source = es;
  store.streamState = "connecting";
  store.emit("stream");
  es.addEventListener("open", () => {
    store.streamState = "live";
    store.emit("stream");
  });
  es.addEventListener("hello", (e) => {
    const hello = parse<Hello>(e);
    store.me = hello.me;
    store.halt = hello.halt;
    // A run this page showed as going on that is no longer active ended while the stream was
    // down (a network change, a dropped stream): take its final state and its final timeline.
    const active = new Set(hello.active.map((r) => r.run_id));
    for (const r of hello.recent ?? []) {
      const known = store.runs.get(r.run_id);
      if (known && known.verdict === null && !active.has(r.run_id)) {
        store.runs.set(r.run_id, r);
        getText(`/api/runs/${encodeURIComponent(r.run_id)}/timeline.svg`).then(
          (svg) => {
            store.timelines.set(r.run_id, svg);
            store.emit("timeline");
          },
          () => {},
        );
      }
    }
    for (const r of hello.active) store.runs.set(r.run_id, r);
    store.emit("me");
    store.emit("halt");
    store.emit("runs");
  });
  es.addEventListener("run", (e) => store.setRun(parse<RunState>(e)));
  es.addEventListener("timeline", (e) => {
    const t = parse<{ run_id: string; svg: string }>(e);
    store.timelines.set(t.run_id, t.svg);
    store.emit("timeline");
  });
  es.addEventListener("annotation", (e) => store.addAnnotation(parse<Annotation>(e)));
  es.addEventListener("run_end", (e) => {
    const end = parse<{ run_id: string; verdict: RunState["verdict"] }>(e);
    const r = store.runs.get(end.run_id);
    if (r) store.setRun({ ...r, verdict: end.verdict, phase: "done" });
  });
  es.addEventListener("halt", (e) => {
    store.halt = parse<Halt>(e);
    store.emit("halt");
  });
  es.addEventListener("fleet", (e) => {
    store.agents = parse<{ agents: Agent[] }>(e).agents;
    store.emit("fleet");
  });
  es.addEventListener("error", () => {
    if (es.readyState !== EventSource.CLOSED) {
      store.streamState = "reconnecting";
      store.emit("stream");
      return;
    }
    // Closed for good by the browser (an error answer): find out whether the session ended.
    store.streamState = "reconnecting";
    store.emit("stream");
    getJson<Me>("/api/me").then(
      () => {
        retry = window.setTimeout(() => connectEvents(onSignedOut), 2000);
      },
      (err: unknown) => {
        if (err instanceof ApiError && err.status === 401) onSignedOut();
        else retry = window.setTimeout(() => connectEvents(onSignedOut), 2000);
      },
    );
  });
}

export function disconnectEvents(): void {
  if (retry !== undefined) window.clearTimeout(retry);
  retry = undefined;
  source?.close();
  source = null;
}
