// What every view shows, fed by the event stream (docs/console-api.md, "Event stream") and by the
// first GETs. Views subscribe to the parts they draw.

import type { Agent, Annotation, Halt, Me, RunState } from "./types";

export type Topic = "me" | "halt" | "runs" | "timeline" | "annotations" | "fleet" | "stream";

class Store {
  me: Me | null = null;
  halt: Halt | null = null;
  // Active runs and the ones that ended while this page was open (newest last).
  runs = new Map<string, RunState>();
  timelines = new Map<string, string>();
  annotations = new Map<string, Annotation[]>();
  agents: Agent[] | null = null;
  streamState: "connecting" | "live" | "reconnecting" = "connecting";
  private listeners = new Map<Topic, Set<() => void>>();

  on(topic: Topic, f: () => void): () => void {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(f);
    return () => set!.delete(f);
  }

  emit(topic: Topic): void {
    for (const f of Array.from(this.listeners.get(topic) ?? [])) f();
  }

  setRun(r: RunState): void {
    this.runs.set(r.run_id, r);
    this.emit("runs");
  }

  addAnnotation(a: Annotation): void {
    const list = this.annotations.get(a.run_id) ?? [];
    // The same note can arrive twice (our own POST's answer and the stream): keep one.
    if (!list.some((x) => x.at_s === a.at_s && x.text === a.text && x.author === a.author)) {
      list.push(a);
      list.sort((x, y) => x.at_s - y.at_s);
    }
    this.annotations.set(a.run_id, list);
    this.emit("annotations");
  }
}

export const store = new Store();
