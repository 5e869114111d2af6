// The console's page: a header with the navigation, the identity and the emergency stop (always
// visible), the halted banner, and one view at a time chosen by the URL's fragment.

import { ApiError, getJson, post, setUnauthenticatedHandler } from "./api";
import { h, replaceChildren } from "./dom";
import { connectEvents, disconnectEvents } from "./events";
import { mountFleet } from "./fleet";
import { mountHalt } from "./halt";
import { mountHistory } from "./history";
import { mountLive } from "./live";
import { mountSchedules } from "./schedules";
import { store } from "./store";
import type { Halt, Me } from "./types";

const VIEWS: Record<string, { title: string; mount: (view: HTMLElement) => () => void }> = {
  live: { title: "Live run", mount: mountLive },
  fleet: { title: "Fleet", mount: mountFleet },
  history: { title: "History", mount: mountHistory },
  schedules: { title: "Schedules", mount: mountSchedules },
};

const app = document.getElementById("app")!;
const view = h("main", { id: "view", tabindex: -1 });
let unmount: () => void = () => {};

// Display options for a projector: large type and high contrast, remembered per browser.
function toggle(id: string, cls: string, label: string): HTMLButtonElement {
  const on = localStorage.getItem(`faultline.${cls}`) === "1";
  document.documentElement.classList.toggle(cls, on);
  const b = h("button", { id, type: "button", className: "toggle", "aria-pressed": on ? "true" : "false" }, label);
  b.addEventListener("click", () => {
    const now = !document.documentElement.classList.contains(cls);
    document.documentElement.classList.toggle(cls, now);
    b.setAttribute("aria-pressed", now ? "true" : "false");
    localStorage.setItem(`faultline.${cls}`, now ? "1" : "0");
  });
  return b;
}

function route(): void {
  unmount();
  const name = location.hash.replace(/^#\/?/, "") || "live";
  const v = VIEWS[name] ?? VIEWS.live;
  for (const a of Array.from(document.querySelectorAll("nav.views a"))) {
    a.setAttribute("aria-current", a.getAttribute("href") === `#/${name}` ? "page" : "false");
  }
  document.title = `${v.title} · Faultline console`;
  unmount = v.mount(view);
}

function showLogin(reason = ""): void {
  disconnectEvents();
  unmount();
  unmount = () => {};
  store.me = null;
  const token = h("input", { id: "token", type: "password", autocomplete: "off", required: true, "aria-label": "Token" });
  const error = h("p", { id: "login-error", className: "error", role: "alert" }, reason);
  const form = h(
    "form",
    { id: "login-form", className: "login" },
    h("h1", {}, "Faultline console"),
    h("label", { for: "token" }, "Token (from ", h("code", {}, "faultline token create"), ")"),
    token,
    h("button", { type: "submit" }, "Sign in"),
    error,
    h("p", { className: "muted" }, "Or present a client certificate signed by the fleet CA."),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      await post("/api/session", { token: token.value.trim() });
      token.value = "";
      await start();
    } catch (err) {
      error.textContent = err instanceof ApiError ? err.message : String(err);
    }
  });
  replaceChildren(app, form);
  token.focus();
}

async function start(): Promise<void> {
  let me: Me;
  try {
    me = await getJson<Me>("/api/me");
  } catch (err) {
    showLogin(err instanceof ApiError && err.status === 401 ? "" : String(err));
    return;
  }
  store.me = me;
  const who = h("span", { id: "me", className: "me" });
  const drawMe = (): void => {
    const m = store.me;
    who.textContent = m ? `${m.identity} · ${m.role}${m.team ? ` · team ${m.team}` : ""}` : "";
  };
  store.on("me", drawMe);
  drawMe();
  const streamDot = h("span", { id: "stream-state", className: "stream", role: "status" });
  store.on("stream", () => {
    streamDot.textContent = store.streamState;
    streamDot.className = `stream ${store.streamState}`;
  });
  const logout = h("button", { id: "logout", type: "button" }, "Sign out");
  logout.addEventListener("click", async () => {
    try {
      await post("/api/session", {}, "DELETE");
    } finally {
      showLogin();
    }
  });
  const stopSlot = h("div", { className: "stop-slot" });
  const banner = h("div", { id: "halt-banner", className: "halt-banner", role: "alert", hidden: true });
  const header = h(
    "header",
    { className: "top" },
    h("span", { className: "brand" }, "Faultline"),
    h(
      "nav",
      { className: "views", "aria-label": "views" },
      ...Object.entries(VIEWS).map(([k, v]) => h("a", { href: `#/${k}` }, v.title)),
    ),
    h("span", { className: "spacer" }),
    streamDot,
    toggle("large-type", "large", "Large type"),
    toggle("high-contrast", "contrast", "High contrast"),
    who,
    logout,
    stopSlot,
  );
  replaceChildren(app, header, banner, view);
  mountHalt(stopSlot, banner);
  getJson<Halt>("/api/halt").then(
    (halt) => {
      if (!store.halt) {
        store.halt = halt;
        store.emit("halt");
      }
    },
    () => {},
  );
  connectEvents(() => showLogin("Your session ended; sign in again."));
  route();
}

setUnauthenticatedHandler(() => {
  if (store.me) showLogin("Your session ended; sign in again.");
});
window.addEventListener("hashchange", () => {
  if (store.me) route();
});
void start();
