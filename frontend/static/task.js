// Follows a scaffolder task's step log over Server-Sent Events, then shows the change link
// (by reloading: the server renders the finished page, so the no-JavaScript page is the same);
// then reloads while the pull request's checks still run.
"use strict";
(function () {
  // A pull request whose checks still run: reload until they are in (plain page refresh).
  const checks = document.getElementById("task-checks");
  const every = checks ? Number(checks.getAttribute("data-refresh-s")) : 0;
  if (every > 0) window.setTimeout(() => window.location.reload(), every * 1000);
  const log = document.getElementById("task-log");
  if (!log || !log.getAttribute("data-events-url")) return;
  const seen = new Set(Array.from(log.querySelectorAll("li[data-id]"),
                                  (li) => li.getAttribute("data-id")));
  const source = new EventSource(log.getAttribute("data-events-url"));
  let finished = false;

  function badge(text) {
    const span = document.createElement("span");
    span.className = "badge " + String(text).replace(/[^A-Za-z0-9-]/g, "-");
    span.textContent = text;
    return span;
  }

  function append(data) {
    if (data.id !== undefined && seen.has(String(data.id))) return;
    if (data.id !== undefined) seen.add(String(data.id));
    const li = document.createElement("li");
    if (data.id !== undefined) li.setAttribute("data-id", String(data.id));
    const step = document.createElement("span");
    step.className = "step";
    step.textContent = data.step || "";
    const msg = document.createElement("span");
    msg.className = "msg";
    msg.textContent = data.message || "";
    li.append(step, " ", badge(data.status || "info"), " ", msg);
    log.appendChild(li);
  }

  function finish() {
    if (finished) return;
    finished = true;
    source.close();
    window.location.reload();
  }

  function handle(event) {
    let data;
    try { data = JSON.parse(event.data); } catch (err) { return; }
    if (data && (data.step || data.message)) append(data);
    const state = data && (data.task_status || (data.step === undefined ? data.status : null));
    if (event.type === "end" || event.type === "done" ||
        state === "succeeded" || state === "failed") finish();
  }

  source.onmessage = handle;
  for (const name of ["step", "log", "event", "status", "end", "done"]) {
    source.addEventListener(name, handle);
  }
  source.onerror = () => {
    // The stream closes when the task ends; the reload shows the final state either way.
    if (source.readyState === EventSource.CLOSED) finish();
  };
})();
