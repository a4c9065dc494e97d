// Progress Billings: progressive enhancements only; every page works without it.
(function () {
  "use strict";
  // Confirm before irreversible actions: <form data-confirm="Void this billing?">,
  // or on the one button of a form that can't be undone (<button data-confirm>).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = (event.submitter && event.submitter.getAttribute("data-confirm")) ||
      form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      return;
    }
    // Progress feedback and double-submit protection on slow actions.
    var button = event.submitter || form.querySelector("[type=submit]");
    if (button && form.hasAttribute("data-busy")) {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      button.dataset.label = button.textContent;
      button.textContent = form.getAttribute("data-busy") || "Working…";
      if (button.name) {
        var hidden = document.createElement("input");
        hidden.type = "hidden"; hidden.name = button.name; hidden.value = button.value;
        form.appendChild(hidden);
      }
    }
  });

  // Downloads that take a moment (PDFs): say so, and keep a double click from
  // asking twice. The page stays, so the link comes back after a few seconds.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-busy]");
    if (!link) { return; }
    if (link.getAttribute("aria-busy") === "true") { event.preventDefault(); return; }
    var label = link.innerHTML;
    link.setAttribute("aria-busy", "true");
    link.classList.add("disabled");
    link.textContent = link.getAttribute("data-busy") || "Working…";
    window.setTimeout(function () {
      link.innerHTML = label;
      link.removeAttribute("aria-busy");
      link.classList.remove("disabled");
    }, 4000);
  });

  // Wide tables scroll sideways: make each scrolling region reachable and
  // scrollable from the keyboard, named after its table (WCAG 2.1.1).
  function focusableScrollers() {
    document.querySelectorAll(".table-responsive").forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth || box.scrollHeight > box.clientHeight;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        var table = box.querySelector("table");
        var caption = table && table.querySelector("caption");
        var section = box.closest("section[aria-labelledby]");
        var heading = section && document.getElementById(section.getAttribute("aria-labelledby"));
        var name = (caption && caption.textContent) || (heading && heading.textContent) || "Table";
        box.setAttribute("aria-label", name.trim() + " (scrolls)");
      }
    });
  }
  focusableScrollers();
  window.addEventListener("load", focusableScrollers);
  window.addEventListener("resize", focusableScrollers);
})();
