// Nothing typed is lost (issue 14 item 3). A form marked data-keep-typed="key"
// keeps what the user types in this tab's sessionStorage until the form itself
// is submitted. Another button on the page (Upload, Add comment, Remove) reloads
// the page: what was typed comes back, with a note to save it. Leaving by a link
// with unsaved changes asks first. A field someone else changed meanwhile keeps
// the server's value (only fields still as they were when typing began are
// restored).
(function () {
  "use strict";
  var form = document.querySelector("form[data-keep-typed]");
  if (!form || !window.sessionStorage) { return; }
  var key = "typed:" + form.getAttribute("data-keep-typed");
  var SKIP = { csrf_token: true, version: true, action: true };

  function fields() {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.name && !SKIP[el.name] && el.type !== "file" && el.type !== "submit" &&
        el.type !== "button" && el.type !== "hidden";
    });
  }
  function valueOf(el) {
    return (el.type === "checkbox" || el.type === "radio") ? (el.checked ? el.value : "") : el.value;
  }
  function snapshot() {
    var out = {};
    fields().forEach(function (el) { out[el.name + (el.type === "radio" ? ":" + el.value : "")] = valueOf(el); });
    return out;
  }
  function read() {
    try { return JSON.parse(sessionStorage.getItem(key) || "null"); } catch (e) { return null; }
  }
  function write(entry) {
    try { sessionStorage.setItem(key, JSON.stringify(entry)); } catch (e) { /* full or private */ }
  }

  var loaded = snapshot();
  var stored = read();
  var dirty = false;
  var restored = 0;
  if (stored && stored.typed) {
    fields().forEach(function (el) {
      var name = el.name + (el.type === "radio" ? ":" + el.value : "");
      if (!(name in stored.typed) || stored.typed[name] === loaded[name]) { return; }
      // Changed meanwhile by someone else: the server's value wins. (No base:
      // the values came back from a refused save, so none of them is saved.)
      if (stored.base && stored.base[name] !== loaded[name]) { return; }
      if (el.type === "checkbox" || el.type === "radio") { el.checked = stored.typed[name] !== ""; }
      else { el.value = stored.typed[name]; }
      el.dispatchEvent(new Event("input", { bubbles: true }));
      restored += 1;
    });
    if (restored) {
      dirty = true;
      var note = document.createElement("div");
      note.className = "alert alert-warning";
      note.id = "typed-restored";
      note.setAttribute("role", "status");
      note.textContent = "What you typed before the page reloaded is back (" + restored +
        " field" + (restored === 1 ? "" : "s") + "). It is not saved yet: press Save draft to keep it.";
      form.parentNode.insertBefore(note, form);
    } else {
      sessionStorage.removeItem(key);
    }
  }
  var base = (stored && restored) ? stored.base : loaded;
  // A save the server refused shows what was typed, not what is saved: keep it
  // as unsaved, so another button on the page does not lose it.
  if (!restored && (form.querySelector(".is-invalid") || document.getElementById("form-message"))) {
    base = null;
    dirty = true;
    write({ base: null, typed: loaded });
  }

  function remember() {
    dirty = true;
    write({ base: base, typed: snapshot() });
  }
  form.addEventListener("input", remember);
  form.addEventListener("change", remember);

  var submitting = false;
  form.addEventListener("submit", function () { submitting = true; sessionStorage.removeItem(key); });
  // Any other form on the page reloads it: what was typed is kept above.
  document.querySelectorAll("form").forEach(function (other) {
    if (other !== form) { other.addEventListener("submit", function () { submitting = true; }); }
  });
  window.addEventListener("beforeunload", function (event) {
    if (!dirty || submitting) { return; }
    event.preventDefault();
    event.returnValue = "";
  });
})();
