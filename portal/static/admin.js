// Back office: "select all" checkboxes for bulk actions (works without it too).
(function () {
  "use strict";
  document.querySelectorAll("input[data-select-all]").forEach(function (master) {
    var name = master.getAttribute("data-select-all");
    var form = master.form || document;
    var boxes = function () {
      return form.querySelectorAll('input[type=checkbox][name="' + name + '"]:not(:disabled)');
    };
    master.addEventListener("change", function () {
      boxes().forEach(function (box) { box.checked = master.checked; });
    });
    form.addEventListener("change", function (event) {
      if (event.target === master || event.target.name !== name) { return; }
      var all = boxes();
      var checked = Array.prototype.filter.call(all, function (b) { return b.checked; });
      master.checked = all.length > 0 && checked.length === all.length;
      master.indeterminate = checked.length > 0 && checked.length < all.length;
    });
  });
})();
