// Progress Billings: progressive enhancements only; every page works without it.
(function () {
  "use strict";
  // Confirm before irreversible actions: <form data-confirm="Void this billing?">
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute("data-confirm");
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
})();
