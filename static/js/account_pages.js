// The API tokens page: times in the viewer's zone, copying the new secret, and a confirmation
// (the page's own dialog) before a token is revoked.

import { $, $$, localizeTimes, setText } from "./dom.js";

localizeTimes();

const copy = $("[data-copy-secret]");
if (copy) {
  copy.addEventListener("click", async () => {
    const input = $("[data-secret]");
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      setText($("[data-copy-result]"), "Copied.");
    } catch {
      setText($("[data-copy-result]"), "Selected: copy it with your keyboard (Ctrl+C or ⌘C).");
    }
  });
}

const dialog = $("[data-revoke-dialog]");
for (const form of $$("[data-revoke-form]")) {
  form.addEventListener("submit", (event) => {
    if (form.dataset.confirmed) return; // the dialog said yes: submit for real
    event.preventDefault();
    setText(
      $("[data-revoke-summary]"),
      `Programs using “${form.dataset.tokenName}” are refused from the moment it is revoked. This cannot be undone.`,
    );
    dialog.returnValue = "";
    dialog.showModal();
    dialog.addEventListener(
      "close",
      () => {
        if (dialog.returnValue !== "revoke") return;
        form.dataset.confirmed = "1";
        form.requestSubmit();
      },
      { once: true },
    );
  });
}
