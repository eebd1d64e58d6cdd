// The header's search box: suggestions grouped by kind as you type (GET /api/catalog/search),
// arrow keys move, Enter opens the highlighted one (or, with none, submits the form to the
// results page), Escape closes, "/" anywhere focuses the box. Without JavaScript the box is a
// plain GET form to /search. ARIA: the APG combobox with a grouped listbox.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const input = document.getElementById("site-search-q");
  const list = document.getElementById("site-search-list");
  const status = document.getElementById("site-search-status");
  if (!input || !list) return;
  const LABELS = {team: "Teams", namespace: "Namespaces", environment: "Environments",
                  application: "Applications", template: "Templates"};
  let options = [];
  let active = -1;
  let timer = 0;
  let asked = 0;

  function close() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function select(index) {
    if (!options.length) return;
    active = (index + options.length) % options.length;
    options.forEach((o, i) => o.setAttribute("aria-selected", i === active ? "true" : "false"));
    input.setAttribute("aria-activedescendant", options[active].id);
    options[active].scrollIntoView({block: "nearest"});
  }

  function option(text, meta, url, extraClass) {
    const li = document.createElement("li");
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", "false");
    li.id = `site-search-option-${options.length}`;
    li.dataset.url = url;
    if (extraClass) li.className = extraClass;
    const name = document.createElement("span");
    name.textContent = text;
    li.append(name);
    if (meta) {
      const small = document.createElement("span");
      small.className = "meta";
      small.textContent = meta;
      li.append(small);
    }
    // mousedown, not click: the input keeps its focus (no blur closing the list first).
    li.addEventListener("mousedown", (event) => { event.preventDefault(); location.href = url; });
    options.push(li);
    return li;
  }

  function show(body, q) {
    list.replaceChildren();
    options = [];
    active = -1;
    input.removeAttribute("aria-activedescendant");
    let count = 0;
    for (const group of body.groups) {
      const ul = document.createElement("ul");
      ul.setAttribute("role", "group");
      const label = document.createElement("li");
      label.setAttribute("role", "presentation");
      label.className = "group-label";
      label.id = `site-search-group-${group.kind}`;
      label.textContent = LABELS[group.kind] || group.kind;
      ul.setAttribute("aria-labelledby", label.id);
      ul.append(label);
      for (const hit of group.items) {
        const meta = hit.description || (hit.title !== hit.name ? hit.title : "") ||
          (hit.owner && hit.kind !== "team" ? `owned by ${hit.owner}` : "");
        ul.append(option(hit.name, meta, hit.url));
        count += 1;
      }
      list.append(ul);
    }
    const more = document.createElement("ul");
    more.setAttribute("role", "group");
    more.setAttribute("aria-label", "All results");
    more.append(option(count ? `All results for “${q}”` : `No match for “${q}”: open the search page`,
                       "", `/search?${new URLSearchParams({q})}`, "all"));
    list.append(more);
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    status.textContent = count ? `${count} suggestions; arrow keys to choose, Enter to open`
                               : "No suggestions";
  }

  async function lookup() {
    const q = input.value.trim();
    if (!q) { close(); status.textContent = ""; return; }
    const mine = ++asked;
    let body = {groups: []};
    try {
      const response = await fetch(`/api/catalog/search?${new URLSearchParams({q, limit: "5"})}`,
                                   {headers: {Accept: "application/json"}, credentials: "same-origin"});
      if (response.ok) body = await response.json();
    } catch (_error) {
      // Offline or refused: the "All results" entry still leads to the results page.
    }
    if (mine === asked && input.value.trim() === q) show(body, q);
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(lookup, 120);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (list.hidden) { lookup(); return; }
      if (event.key === "ArrowDown") select(active + 1);
      else select(active < 0 ? options.length - 1 : active - 1);
    } else if (event.key === "Enter" && !list.hidden && active >= 0) {
      event.preventDefault();
      location.href = options[active].dataset.url;
    } else if (event.key === "Escape") {
      if (!list.hidden) { event.preventDefault(); close(); }
    }
  });
  input.addEventListener("blur", close);

  document.addEventListener("keydown", (event) => {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target instanceof HTMLElement &&
        (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
    event.preventDefault();
    input.focus();
    input.select();
  });
});
