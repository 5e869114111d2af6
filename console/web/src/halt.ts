// The emergency stop: one always-visible button, a confirmation dialog, the halted banner every
// viewer sees and the Resume control. The server decides who may halt; a refusal is shown as the
// server worded it.

import { ApiError, post } from "./api";
import { h, replaceChildren, when } from "./dom";
import { store } from "./store";
import type { Halt } from "./types";

function message(err: unknown): string {
  if (err instanceof ApiError) return `Refused (${err.status}): ${err.message}`;
  return `Failed: ${err instanceof Error ? err.message : String(err)}`;
}

export function mountHalt(buttonSlot: HTMLElement, bannerSlot: HTMLElement): void {
  const error = h("p", { id: "halt-error", className: "error", role: "alert" });
  const reason = h("input", {
    id: "halt-reason",
    type: "text",
    maxlength: 500,
    placeholder: "why (for the audit log)",
    "aria-label": "Reason for the halt",
  });
  const confirm = h("button", { id: "confirm-halt", type: "button", className: "danger" }, "Halt the fleet");
  const cancel = h("button", { id: "cancel-halt", type: "button" }, "Cancel");
  const dialog = h(
    "dialog",
    { id: "halt-dialog", "aria-labelledby": "halt-dialog-title" },
    h("h2", { id: "halt-dialog-title" }, "Halt the whole fleet?"),
    h(
      "p",
      {},
      "Every active fault on every agent is reverted now, the running experiments end ABORTED, " +
        "and no run starts until someone resumes.",
    ),
    h("label", { for: "halt-reason" }, "Reason"),
    reason,
    error,
    h("div", { className: "actions" }, cancel, confirm),
  );
  const stop = h(
    "button",
    { id: "stop", type: "button", className: "stop", "aria-haspopup": "dialog" },
    "Emergency stop",
  );
  stop.addEventListener("click", () => {
    error.textContent = "";
    dialog.showModal();
    confirm.focus();
  });
  cancel.addEventListener("click", () => dialog.close());
  confirm.addEventListener("click", async () => {
    confirm.disabled = true;
    error.textContent = "Halting…";
    try {
      const halt = await post<Halt>("/api/halt", { reason: reason.value.trim() || "emergency stop from the console" });
      if (halt) {
        store.halt = halt;
        store.emit("halt");
      }
      dialog.close();
      error.textContent = "";
    } catch (err) {
      error.textContent = message(err);
    } finally {
      confirm.disabled = false;
    }
  });
  replaceChildren(buttonSlot, stop, dialog);

  const resumeError = h("span", { id: "resume-error", className: "error", role: "alert" });
  const draw = (): void => {
    const halt = store.halt;
    document.documentElement.classList.toggle("halted", !!halt?.halted);
    if (!halt?.halted) {
      replaceChildren(bannerSlot);
      bannerSlot.hidden = true;
      stop.textContent = "Emergency stop";
      return;
    }
    stop.textContent = "Fleet halted";
    const resume = h("button", { id: "resume", type: "button" }, "Resume");
    resume.addEventListener("click", async () => {
      resume.disabled = true;
      resumeError.textContent = "";
      try {
        const state = await post<Halt>("/api/resume", {});
        if (state) {
          store.halt = state;
          store.emit("halt");
        }
      } catch (err) {
        resumeError.textContent = message(err);
        resume.disabled = false;
      }
    });
    bannerSlot.hidden = false;
    replaceChildren(
      bannerSlot,
      h("strong", { id: "halted-state" }, "FLEET HALTED"),
      ` by ${halt.by || "?"} at ${when(halt.at)}`,
      halt.reason ? `: ${halt.reason}` : "",
      ` · ${halt.reverted} fault${halt.reverted === 1 ? "" : "s"} reverted`,
      halt.errors.length ? ` · ${halt.errors.length} revert error(s): ` : "",
      halt.errors.map((e) => `${e.agent}: ${e.error}`).join("; "),
      " · no run starts until resumed ",
      resume,
      resumeError,
    );
  };
  store.on("halt", draw);
  draw();
}
