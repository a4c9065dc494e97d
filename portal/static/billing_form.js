// Progress Billings: live preview of a billing's G703/G702 totals while typing.
// The server recomputes every figure on save (portal/money.py is the truth);
// this mirrors its rules: integer cents, ROUND_HALF_UP (ties away from zero),
// totals as sums of rounded line values. BigInt keeps 999,999,999,999.99 exact.
(function () {
  "use strict";
  // The contact's billing form, or the reviewer's approved amounts (review page).
  var form = document.getElementById("billing-form") || document.querySelector("form[data-live-g703]");
  var table = document.getElementById("g703");
  var summary = document.getElementById("g702");
  if (!form || !table || typeof BigInt !== "function") { return; }

  var AMOUNT = /^(-)?\$?([1-9][0-9]{0,2}(?:,[0-9]{3})+|[0-9]+)(?:\.([0-9]{1,2}))?$/;
  var MAX = BigInt("99999999999999");

  // "1,234.5" -> 123450n; "" -> 0n; anything the server would refuse -> null.
  function parseCents(text) {
    var s = (text || "").trim();
    if (s === "") { return BigInt(0); }
    var m = AMOUNT.exec(s);
    if (!m) { return null; }
    var cents = BigInt(m[2].replace(/,/g, "")) * BigInt(100) + BigInt(((m[3] || "") + "00").slice(0, 2));
    if (cents > MAX) { return null; }
    return m[1] ? -cents : cents;
  }
  // A stored decimal string ("10.0000", "-20000.00") scaled to an integer.
  function scaled(text, places) {
    var s = String(text || "0").trim();
    var neg = s.charAt(0) === "-";
    if (neg) { s = s.slice(1); }
    var parts = s.split(".");
    var frac = ((parts[1] || "") + "0000000000").slice(0, places);
    var value = BigInt(parts[0] || "0") * BigInt(10) ** BigInt(places) + BigInt(frac || "0");
    return neg ? -value : value;
  }
  function divRound(n, d) {
    var neg = n < BigInt(0);
    var a = neg ? -n : n;
    var q = a / d;
    if (BigInt(2) * (a % d) >= d) { q += BigInt(1); }
    return neg ? -q : q;
  }
  function money(cents) {
    var neg = cents < BigInt(0);
    var a = neg ? -cents : cents;
    var whole = (a / BigInt(100)).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var frac = (a % BigInt(100)).toString().padStart(2, "0");
    return (neg ? "-$" : "$") + whole + "." + frac;
  }
  function pct(hundredths) {
    var neg = hundredths < BigInt(0);
    var a = neg ? -hundredths : hundredths;
    return (neg ? "-" : "") + (a / BigInt(100)).toString() + "." + (a % BigInt(100)).toString().padStart(2, "0") + "%";
  }
  function set(scope, selector, text) {
    var el = scope.querySelector(selector);
    if (el) { el.textContent = text; }
  }

  var workPct = scaled(table.dataset.workPct, 4);
  var materialsPct = scaled(table.dataset.materialsPct, 4);
  var MILLION = BigInt(1000000);

  function recompute() {
    var totals = { e: BigInt(0), f: BigInt(0), g: BigInt(0), h: BigInt(0), i: BigInt(0), iw: BigInt(0), im: BigInt(0) };
    var ok = true;
    table.querySelectorAll("tbody tr[data-sov]").forEach(function (row) {
      var id = row.dataset.sov;
      var work = row.querySelector('[name="line-' + id + '-work"]');
      var mats = row.querySelector('[name="line-' + id + '-materials"]');
      var inst = row.querySelector('[name="line-' + id + '-installed"]');
      var c = scaled(row.dataset.scheduled, 2);
      var d = scaled(row.dataset.previous, 2);
      var e = work ? parseCents(work.value) : BigInt(0);
      var fresh = mats ? parseCents(mats.value) : BigInt(0);
      var installed = inst ? parseCents(inst.value) : BigInt(0);
      if (e === null || fresh === null || fresh < BigInt(0) || installed === null || installed < BigInt(0)) {
        ok = false;
        ["f", "g", "pct", "h", "i"].forEach(function (col) { set(row, '[data-col="' + col + '"]', "—"); });
        return;
      }
      // F = stored before + new − installed, never below 0 (SPEC §4).
      var f = scaled(row.dataset.storedBefore || "0", 2) + fresh - installed;
      if (f < BigInt(0)) { f = BigInt(0); }
      set(row, '[data-col="f"]', money(f));
      var g = d + e + f;
      var onWork = divRound((d + e) * workPct, MILLION);
      var onMaterials = divRound(f * materialsPct, MILLION);
      var i = onWork + onMaterials;
      var percent = c === BigInt(0) ? BigInt(0) : divRound(g * BigInt(10000), c);
      set(row, '[data-col="g"]', money(g));
      set(row, '[data-col="pct"]', pct(percent));
      set(row, '[data-col="h"]', money(c - g));
      set(row, '[data-col="i"]', money(i));
      totals.e += e; totals.f += f; totals.g += g; totals.h += c - g; totals.i += i;
      if (row.dataset.claimed) { markChange(row, id, [e, fresh, installed]); }
      totals.iw += onWork; totals.im += onMaterials;
    });
    var release = form.querySelector('[name="retainage_released"]');
    var released = release ? parseCents(release.value) : BigInt(0);
    if (released === null) { ok = false; }
    ["e", "f", "g", "h", "i"].forEach(function (col) {
      set(table, 'tfoot [data-total="' + col + '"]', ok ? money(totals[col]) : "—");
    });
    if (!summary) { return; }
    var contract = scaled(summary.dataset.original, 2) + scaled(summary.dataset.changeOrders, 2);
    // A release counts only up to the retainage base: line 5 never below 0.
    var releasedToDate = scaled(summary.dataset.releasedBefore, 2) + (released || BigInt(0));
    if (releasedToDate > totals.i) { releasedToDate = totals.i > BigInt(0) ? totals.i : BigInt(0); }
    var retainage = totals.i - releasedToDate;
    var earned = totals.g - retainage;
    var due = earned - scaled(summary.dataset.previousCertificates, 2);
    var values = {
      total_completed_and_stored: totals.g,
      retainage: retainage,
      retainage_on_work: totals.iw,
      retainage_on_materials: totals.im,
      total_earned_less_retainage: earned,
      current_payment_due: due,
      balance_to_finish_including_retainage: contract - earned
    };
    Object.keys(values).forEach(function (key) {
      summary.querySelectorAll('[data-summary="' + key + '"]').forEach(function (el) {
        el.textContent = ok ? money(values[key]) : "—";
      });
      // Review page: the difference from the claim, as the server shows it.
      summary.querySelectorAll('[data-difference="' + key + '"]').forEach(function (el) {
        var claimedCell = el.parentNode.querySelector("[data-cents]");
        var diff = ok && claimedCell ? values[key] - scaled(claimedCell.dataset.cents, 2) : BigInt(0);
        el.textContent = diff === BigInt(0) ? "" : money(diff);
        el.classList.toggle("text-danger", diff !== BigInt(0));
      });
      // Review page: the sticky bar repeats a few of these lines.
      document.querySelectorAll('[data-live-summary="' + key + '"]').forEach(function (el) {
        el.textContent = ok ? money(values[key]) : "—";
      });
      document.querySelectorAll('[data-live-difference="' + key + '"]').forEach(function (el) {
        var diff = ok ? values[key] - scaled(el.dataset.cents, 2) : BigInt(0);
        el.textContent = diff === BigInt(0) ? "" : money(diff);
        el.classList.toggle("text-danger", diff !== BigInt(0));
      });
    });
  }

  // Review page: a line whose approved amounts differ from the claim is marked
  // and needs its reason (the payment schedule prints it; the server checks).
  function markChange(row, id, approved) {
    var claimed = row.dataset.claimed.split("|").map(function (v) { return scaled(v, 2); });
    var changed = approved.some(function (v, n) { return v !== claimed[n]; });
    row.classList.toggle("table-warning", changed);
    var reason = row.querySelector('[name="line-' + id + '-comment"]');
    if (reason) {
      reason.required = changed;
      reason.setAttribute("aria-required", changed ? "true" : "false");
      reason.placeholder = changed ? "Reason for the change (required)" : "Reason (required for revise or a changed amount)";
    }
  }

  // A form shown again with errors holds the typed values: preview them at once.
  if (document.getElementById("form-message") || form.querySelector(".is-invalid")) { recompute(); }
  form.addEventListener("input", function (event) {
    if (event.target.classList.contains("amount")) { recompute(); }
  });
  // Per-button confirmation (app.js confirms per form).
  form.querySelectorAll("[data-confirm-click]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm-click"))) { event.preventDefault(); }
    });
  });
})();
