// The console's JSON types, exactly as docs/console-api.md defines them.

export type Role = "viewer" | "operator";
export type Verdict = "PASS" | "FAIL" | "ABORTED" | "ERROR";
export type Phase = "preflight" | "baseline" | "fault" | "recovery" | "done";

export interface Me {
  identity: string;
  role: Role;
  team: string;
  source: "certificate" | "token";
}

export interface Marker {
  at_s: number;
  bracket: [number, number];
}

export interface ObjectiveState {
  name: string;
  kind: string;
  limit_s: number;
  elapsed_s: number;
  state: "pending" | "met" | "missed";
}

export interface FaultState {
  target: string;
  host: string;
  workload: string;
  start_s: number;
  end_s: number | null;
}

export interface RunState {
  run_id: string;
  experiment: string;
  phase: Phase;
  started_at: string;
  elapsed_s: number;
  objectives: ObjectiveState[];
  detect: Marker | null;
  recover: Marker | null;
  faults: FaultState[];
  samples: number;
  verdict: Verdict | null;
}

export interface RunRow {
  run_id: string;
  experiment: string;
  verdict: Verdict;
  started_at: string;
  ttd_s: number | null;
  ttr_s: number | null;
  recover_bracket: [number, number] | null;
}

export interface ActiveFault {
  fault_id: string;
  kind: string;
  run_id: string;
  workload: string;
  evidence: Record<string, number>;
}

export interface Agent {
  id: string;
  address: string;
  labels: Record<string, string>;
  capabilities: string[];
  health: "attached" | "lost";
  last_seen_s: number;
  active_faults: ActiveFault[];
}

export interface Schedule {
  name: string;
  experiment: string;
  cron: string;
  paused: boolean;
  next_firing: string | null;
  missed: { at: string; reason: string }[];
}

export interface Halt {
  halted: boolean;
  by: string;
  reason: string;
  at: string;
  reverted: number;
  errors: { agent: string; error: string }[];
}

export interface Annotation {
  run_id: string;
  at_s: number;
  author: string;
  text: string;
}

export interface Hello {
  me: Me;
  halt: Halt;
  active: RunState[];
  // Runs that finished on the controller recently (their final state).
  recent?: RunState[];
}

export interface TrendPoint {
  run_id: string;
  at: string;
  ttr_s: number | null;
  bracket: [number, number] | null;
  verdict: Verdict;
}
