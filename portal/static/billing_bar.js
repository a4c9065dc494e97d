// The contact's billing form on any screen, a phone first (issue 14 item 6):
// - the bar at the bottom shows this period's work and the payment due as
//   billing_form.js recomputes them (it follows the G703 total and the G702
//   line, whatever updates them);
// - a save remembers where the page was (the details for their Save draft
//   button; else the line being entered, or the first line on screen), so the saved page opens there
//   (the server adds it to the redirect as #line-<id> or #details), and the
//   saved message, shown at the top of the page, is repeated in the bar.
(function () {
  "use strict";
  var form = document.getElementById("billing-form");
  var bar = document.getElementById("billing-bar");
  var table = document.getElementById("g703");
  if (!form || !bar || !table) { return; }

  function follow(source, target) {
    if (!source || !target) { return; }
    var copy = function () { target.textContent = source.textContent; };
    new MutationObserver(copy).observe(source, { childList: true, characterData: true, subtree: true });
    copy();
  }
  follow(table.querySelector('tfoot [data-total="e"]'), document.getElementById("bar-work"));
  follow(document.querySelector('#g702 [data-summary="current_payment_due"]'), document.getElementById("bar-due"));

  // ---------------------------------------------------------------- place
  var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr[id]"));
  var lastRow = null;
  form.addEventListener("focusin", function (event) {
    var row = event.target.closest && event.target.closest("tbody tr[id]");
    if (row && table.contains(row)) { lastRow = row; }
  });
  function onScreen(el) {
    var box = el.getBoundingClientRect();
    var bottom = Math.min(window.innerHeight, bar.getBoundingClientRect().top || window.innerHeight);
    return box.bottom > 0 && box.top < bottom && box.height > 0;
  }
  function place(submitter) {
    // The Save draft button of the details: the contact was there.
    var details = document.getElementById("details");
    if (submitter && details && details.contains(submitter)) { return "details"; }
    if (lastRow && onScreen(lastRow)) { return lastRow.id; }
    for (var n = 0; n < rows.length; n += 1) {
      if (onScreen(rows[n])) { return rows[n].id; }
    }
    return details && onScreen(details) ? "details" : "";
  }
  var field = form.querySelector('input[name="place"]');
  form.addEventListener("submit", function (event) {
    if (field) { field.value = place(event.submitter); }
  });

  // Opened at a place after a save: the message at the top is out of sight.
  if (/^#(line-\d+|details)$/.test(window.location.hash)) {
    var flashed = Array.prototype.map.call(
      document.querySelectorAll("main > .alert-dismissible"),
      function (alert) { return alert.textContent.trim(); });
    var status = document.getElementById("bar-status");
    if (status && flashed.length) { status.textContent = flashed.join(" "); }
  }
})();
