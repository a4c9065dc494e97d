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

// New billing period: the dates follow the project chosen (its next free
// month) and the due date follows the end date, until the user types a date.
(function () {
  "use strict";
  var form = document.querySelector("form[data-period-dates]");
  if (!form) { return; }
  var project = form.querySelector("select[name=project_id]");
  var start = form.elements.start_date;
  var end = form.elements.end_date;
  var due = form.elements.due_date;
  var dueDays = parseInt(form.getAttribute("data-due-days"), 10) || 0;
  var typed = {};
  [start, end, due].forEach(function (field) {
    field.addEventListener("input", function () { typed[field.name] = true; });
  });
  var dueFor = function (startValue, endValue) {
    var d = new Date(endValue + "T00:00:00Z");
    if (isNaN(d)) { return ""; }
    d.setUTCDate(d.getUTCDate() - dueDays);
    var iso = d.toISOString().slice(0, 10);
    return iso < startValue ? startValue : iso;
  };
  end.addEventListener("change", function () {
    if (!typed.due_date && end.value) { due.value = dueFor(start.value, end.value); }
  });
  if (project) {
    project.addEventListener("change", function () {
      var option = project.options[project.selectedIndex];
      if (!option || !option.getAttribute("data-start")) { return; }
      if (!typed.start_date) { start.value = option.getAttribute("data-start"); }
      if (!typed.end_date) { end.value = option.getAttribute("data-end"); }
      if (!typed.due_date) { due.value = option.getAttribute("data-due"); }
    });
  }
})();
