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
