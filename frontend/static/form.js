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
    // Row editors: each cell's own message (the server names the row and the cell).
    const cells = result.cells || {};
    for (const name of touched) {
      const box = form.querySelector('[data-field="' + CSS.escape(name) + '"] fieldset.rows');
      if (!box) continue;
      for (const error of box.querySelectorAll("[data-rows] .field-error")) {
        const id = error.id.replace(/-error$/, "");
        const message = cells[id] || "";
        if (error.textContent !== message) error.textContent = message;
        const input = document.getElementById(id);
        if (!input) continue;
        if (message) input.setAttribute("aria-invalid", "true");
        else input.removeAttribute("aria-invalid");
      }
    }
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(check, delay);
  }

  // Row editors: "Add a row" and "Remove" work as plain submit buttons (the server draws the
  // form again); here they act in place. A new row copies the editor's <template>, whose
  // ``__i__`` (index posted to the server) and ``__n__`` (row number read aloud) are filled in.
  form.addEventListener("click", (event) => {
    const add = event.target.closest("[data-row-add]");
    const remove = event.target.closest("[data-row-remove]");
    if (add) {
      event.preventDefault();
      const editor = add.closest("fieldset.rows");
      const body = editor.querySelector("[data-rows]");
      const template = editor.querySelector("template[data-row-template]");
      const index = Number(body.getAttribute("data-next") || "0");
      body.setAttribute("data-next", String(index + 1));
      const position = body.querySelectorAll("[data-row]").length + 1;
      const html = template.innerHTML.replaceAll("__i__", String(index))
        .replaceAll("__n__", String(position));
      body.insertAdjacentHTML("beforeend", html);
      const first = body.lastElementChild.querySelector("input, select");
      if (first) first.focus();
    } else if (remove) {
      event.preventDefault();
      const editor = remove.closest("fieldset.rows");
      remove.closest("[data-row]").remove();
      const name = editor.closest("[data-field]").getAttribute("data-field");
      touched.add(name);
      schedule(0);
      editor.querySelector("[data-row-add]").focus();
    }
  });
  // A chooser that follows another field (an application's namespace follows its team): only
  // the chosen team's group stays selectable. Without JavaScript every group is offered.
  for (const select of form.querySelectorAll("select[data-follows]")) {
    const leader = form.querySelector('[name="' + CSS.escape(select.getAttribute("data-follows")) + '"]');
    if (!leader) continue;
    const apply = () => {
      const team = leader.value;
      for (const group of select.querySelectorAll("optgroup[data-group]")) {
        const mine = !team || group.getAttribute("data-group") === team;
        group.hidden = !mine;
        group.disabled = !mine;
      }
      const chosen = select.selectedOptions[0];
      if (chosen && chosen.parentElement && chosen.parentElement.disabled) select.value = "";
    };
    leader.addEventListener("change", apply);
    apply();
  }
  // Typing into the advanced JSON text means using it.
  form.addEventListener("input", (event) => {
    if (!event.target.matches("details.advanced textarea")) return;
    const box = event.target.closest("details").querySelector('input[type="checkbox"]');
    if (box) box.checked = true;
  });

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
