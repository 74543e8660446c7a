// The research runs' pages: times in the viewer's zone; on the form, only the chosen source's
// field; on a run's page and the list, the progress of unfinished runs, polled until they end.
// A run's page reloads once its run has ended, to show its report from the server.

import { $, $$, localizeTimes, setText } from "./dom.js";

localizeTimes();

const POLL_MS = 1000;
const STATE_LABELS = { queued: "Queued", running: "Running", done: "Done", failed: "Failed", cancelled: "Cancelled" };
const STATE_BADGES = { done: "badge-ok", failed: "badge-error", running: "badge-warn", queued: "badge-warn" };

function showState(root, progress) {
  const badge = $("[data-run-state]", root);
  if (!badge) return;
  badge.className = `badge run-state run-state-${progress.state} ${STATE_BADGES[progress.state] || ""}`.trim();
  setText(badge, STATE_LABELS[progress.state] || progress.state);
}

function showProgress(root, progress) {
  const bar = $("[data-run-bar]", root);
  if (bar) bar.value = progress.percent;
  setText($("[data-run-percent]", root), `${progress.percent} %`);
  setText($("[data-run-done]", root), progress.done_s);
  setText($("[data-run-total]", root), progress.total_s);
  setText($("[data-run-messages]", root), progress.messages);
}

async function fetchProgress(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

function poll(url, onProgress) {
  const tick = async () => {
    let keepGoing = true;
    try {
      keepGoing = onProgress(await fetchProgress(url)) !== false;
    } catch {
      // A failed poll (a restarting server) is retried on the next tick.
    }
    if (keepGoing) setTimeout(tick, POLL_MS);
  };
  setTimeout(tick, POLL_MS);
}

// A run's page.
const runCard = $("[data-run]");
if (runCard && runCard.dataset.runFinished !== "1") {
  poll(runCard.dataset.progressUrl, (progress) => {
    showProgress(runCard, progress);
    showState(document, progress);
    if (progress.finished) {
      window.location.reload();
      return false;
    }
    return true;
  });
}

// The list: each unfinished row.
for (const row of $$("tr[data-progress-url]")) {
  poll(row.dataset.progressUrl, (progress) => {
    showProgress(row, progress);
    showState(row, progress);
    return !progress.finished;
  });
}

// The form: the chosen source's field only.
const form = $("[data-run-form]");
if (form) {
  const sync = () => {
    const chosen = $("input[name=source]:checked", form)?.value || "preset";
    for (const field of $$("[data-source-field]", form)) field.hidden = field.dataset.sourceField !== chosen;
  };
  for (const radio of $$("input[name=source]", form)) radio.addEventListener("change", sync);
  sync();
}
