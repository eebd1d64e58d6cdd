// Inline validation of the request form: every touched field is sent to the server, which runs
// the same validator as the dry-run and the API; its message is shown next to the field.
"use strict";
(function () {
  const form = document.querySelector("form[data-validate-url]");
  if (!form) return;
  const url = form.getAttribute("data-validate-url");
  const touched = new Set();
  let timer = null;
  let sequence = 0;

  function fieldOf(el) {
    const box = el.closest("[data-field]");
    return box ? box.getAttribute("data-field") : null;
  }

  function show(name, message) {
    const box = form.querySelector('[data-field="' + CSS.escape(name) + '"]');
    if (!box) return;
    const error = box.querySelector(".field-error");
    if (error && error.textContent !== message) error.textContent = message;
    // The control that carries aria-describedby (input, select, textarea or fieldset).
    const control = box.querySelector("[aria-describedby]");
    if (!control) return;
    if (message) control.setAttribute("aria-invalid", "true");
    else control.removeAttribute("aria-invalid");
  }

  async function check() {
    if (touched.size === 0) return;
    const body = new URLSearchParams(new FormData(form));
    for (const name of touched) body.append("_fields", name);
    const mine = ++sequence;
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "X-CSRF-Token": form.querySelector('[name="csrf_token"]').value,
                   "Accept": "application/json" },
        body: body,
        credentials: "same-origin",
      });
    } catch (err) {
      return; // offline: the server checks again on preview
    }
    if (!response.ok || mine !== sequence) return;
    const result = await response.json();
    for (const name of touched) show(name, (result.errors || {})[name] || "");
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(check, delay);
  }

  form.addEventListener("input", (event) => {
    const name = fieldOf(event.target);
    if (!name) return;
    // Typing: re-check only fields already judged once, so the user is not nagged mid-word.
    if (touched.has(name)) schedule(350);
  });
  form.addEventListener("change", (event) => {
    const name = fieldOf(event.target);
    if (!name) return;
    touched.add(name);
    schedule(0);
  });
  form.addEventListener("focusout", (event) => {
    const name = fieldOf(event.target);
    if (!name || !event.target.value) return;
    touched.add(name);
    schedule(0);
  });
})();
