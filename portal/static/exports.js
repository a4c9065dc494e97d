// Finance pages: "select all" for ready billings; filters apply on change.
(function () {
  "use strict";
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll("input.billing-check:not(:disabled)").forEach(function (box) {
        box.checked = all.checked;
      });
    });
  }
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
})();

// "Copy" beside a value shown once (a new API token): the clipboard when the
// browser allows it, else the value is selected for Ctrl+C.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.querySelector(button.getAttribute("data-copy"));
    var status = document.querySelector("[data-copy-status]");
    if (!field) { return; }
    var say = function (text) { if (status) { status.textContent = text; } };
    button.addEventListener("click", function () {
      field.focus();
      field.select();
      var done = function () {
        button.textContent = button.getAttribute("data-copied") || "Copied";
        say("The token is on your clipboard.");
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          say("Press Ctrl+C (or Cmd+C) to copy the selected token.");
        });
      } else {
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
        if (ok) { done(); } else { say("Press Ctrl+C (or Cmd+C) to copy the selected token."); }
      }
    });
  });
})();
