// The console's only script: live parts over Server-Sent Events, and a confirm step
// for destructive buttons. Every fragment is HTML the server rendered with escaping.
"use strict";

function startEvents() {
  const source = document.body.dataset.events;
  if (!source) return;
  const events = new EventSource(source);
  events.onmessage = (message) => {
    const parts = JSON.parse(message.data);
    for (const [id, html] of Object.entries(parts)) {
      const element = document.getElementById(id);
      if (element) element.innerHTML = html;
    }
    document.body.dataset.updated = String(Date.now());
  };
}

function confirmDestructive() {
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });
}

startEvents();
confirmDestructive();
