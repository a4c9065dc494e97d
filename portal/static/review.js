// Progress Billings: the review page's keyboard and its "changed lines" filter
// (issue 15). Everything here drives the page's own fields and links: a line
// approved with "a" posts the same amounts and status a click would, and the
// server validates them as ever. Keys never act while typing in a field.
(function () {
  "use strict";
  var table = document.getElementById("g703");
  if (!table) { return; }
  var bar = document.getElementById("review-bar");
  var sheet = document.getElementById("shortcuts");
  var opener = document.getElementById("shortcuts-open");
  var announcer = document.getElementById("review-announce");
  var toggle = document.getElementById("changed-toggle");
  var decision = document.getElementById("decision");
  var box = table.closest(".table-responsive");
  var root = document.documentElement;
  var current = null;

  function say(text) {
    if (!announcer) { return; }
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 30);
  }
  function rows() {
    return Array.prototype.filter.call(table.tBodies[0].rows, function (row) { return !row.hidden; });
  }
  function lineNumber(row) { return row.id.replace(/^line-/, ""); }
  function field(row, what) {
    return row.dataset.sov ? row.querySelector('[name="line-' + row.dataset.sov + "-" + what + '"]') : null;
  }

  // ---------------------------------------------------------- sticky layout
  // The bar and (on wide screens) the decision card stay in view; the lines'
  // scrolling box fills what is left, and scrolling to a line keeps it clear
  // of them (scroll-padding).
  function layout() {
    var barHeight = bar ? bar.getBoundingClientRect().height : 0;
    var stuck = decision && window.getComputedStyle(decision).position === "sticky";
    var decisionHeight = stuck ? decision.getBoundingClientRect().height : 0;
    root.style.setProperty("--review-bar-h", Math.ceil(barHeight) + "px");
    root.style.setProperty("--review-decision-h", Math.ceil(decisionHeight) + "px");
    root.style.scrollPaddingTop = Math.ceil(barHeight + 8) + "px";
    root.style.scrollPaddingBottom = Math.ceil(decisionHeight + 8) + "px";
    if (box && table.tHead) {
      box.style.scrollPaddingTop = Math.ceil(table.tHead.getBoundingClientRect().height) + "px";
    }
  }
  layout();
  window.addEventListener("resize", layout);
  window.addEventListener("load", layout);

  // ------------------------------------------------------------ the lines
  function select(row, focusRow) {
    if (!row) { return; }
    if (current && current !== row) {
      current.removeAttribute("aria-current");
    }
    current = row;
    row.setAttribute("aria-current", "true");
    if (focusRow) {
      if (!row.hasAttribute("tabindex")) { row.setAttribute("tabindex", "-1"); }
      row.focus({ preventScroll: true });
      reveal(row);
    }
  }
  // Scroll the line into view: in the lines' box below its sticky heading,
  // then in the window between the sticky bar and the decision card.
  function reveal(row) {
    var r;
    if (box) {
      var head = table.tHead ? table.tHead.getBoundingClientRect().height : 0;
      var b = box.getBoundingClientRect();
      var top = b.top + head;
      var bottom = b.top + box.clientHeight;
      r = row.getBoundingClientRect();
      if (r.top < top) { box.scrollTop -= top - r.top; }
      else if (r.bottom > bottom) { box.scrollTop += Math.min(r.bottom - bottom, r.top - top); }
    }
    var above = bar ? bar.getBoundingClientRect().bottom : 0;
    var below = window.innerHeight;
    if (decision) { below = Math.min(below, decision.getBoundingClientRect().top); }
    r = row.getBoundingClientRect();
    // Instant, not Bootstrap's smooth root scrolling: the next key press
    // measures from where this one left the page.
    if (r.top < above + 4) { window.scrollBy({ top: r.top - above - 4, behavior: "instant" }); }
    else if (r.bottom > below - 4) { window.scrollBy({ top: Math.min(r.bottom - below + 4, r.top - above - 4), behavior: "instant" }); }
  }
  function move(step) {
    var list = rows();
    if (!list.length) { return; }
    var at = current ? list.indexOf(current) : -1;
    var next = at < 0 ? (step > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, at + step));
    select(list[next], true);
  }
  // Clicking or tabbing into a line makes it the current one.
  function follow(event) {
    var row = event.target.closest && event.target.closest("#g703 tbody tr");
    if (row && row !== current) { select(row, false); }
  }
  table.addEventListener("focusin", follow);
  table.addEventListener("click", follow);

  function setValue(input, value) {
    if (!input || input.value === value) { return; }
    input.value = value;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }
  function setStatus(row, value) {
    var status = field(row, "status");
    if (status && status.value !== value) {
      status.value = value;
      status.dispatchEvent(new Event("change", { bubbles: true }));
    }
    return status;
  }
  function approveAsClaimed(row) {
    if (!row || !row.dataset.claimedText) { return; }
    var claimed = row.dataset.claimedText.split("|");
    setValue(field(row, "work"), claimed[0]);
    setValue(field(row, "materials"), claimed[1]);
    setValue(field(row, "installed"), claimed[2]);
    if (setStatus(row, table.dataset.statusApproved)) {
      say("Line " + lineNumber(row) + " approved as claimed.");
    }
  }
  function sendBack(row) {
    if (!row || !setStatus(row, table.dataset.statusRevise)) { return; }
    var reason = field(row, "comment");
    if (reason) {
      reason.required = true;
      reason.setAttribute("aria-required", "true");
      reason.focus();
    }
    say("Line " + lineNumber(row) + " marked revise: type the reason.");
  }
  function edit(row) {
    var work = row && field(row, "work");
    if (work) { work.focus(); work.select(); }
  }

  // ------------------------------------------------- only the changed lines
  function showChanged(only, remember) {
    if (!toggle) { return; }
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      row.hidden = only && !row.hasAttribute("data-changed");
    });
    toggle.setAttribute("aria-pressed", only ? "true" : "false");
    toggle.textContent = only ? "Show all " + toggle.dataset.total + " lines"
      : "Show only the " + toggle.dataset.count + " changed";
    toggle.href = only ? toggle.dataset.all : toggle.dataset.only;
    var showing = document.getElementById("changed-showing");
    if (showing) { showing.hidden = !only; }
    if (remember && window.history && window.history.replaceState) {
      window.history.replaceState(null, "", only ? toggle.dataset.only : toggle.dataset.all);
    }
    if (current && current.hidden) {
      current.removeAttribute("aria-current");
      current = null;
    }
    say(only ? "Showing the " + toggle.dataset.count + " changed lines of " + toggle.dataset.total + "."
      : "Showing all " + toggle.dataset.total + " lines.");
  }
  if (toggle) {
    toggle.setAttribute("role", "button");
    toggle.setAttribute("aria-pressed", toggle.href.indexOf("changed=1") < 0 ? "true" : "false");
    toggle.addEventListener("click", function (event) {
      event.preventDefault();
      showChanged(toggle.getAttribute("aria-pressed") !== "true", true);
    });
  }

  // ------------------------------------------------------------ the sheet
  var returnTo = null;
  function openSheet() {
    if (!sheet || sheet.open || typeof sheet.showModal !== "function") { return; }
    returnTo = document.activeElement;
    sheet.showModal();
  }
  if (sheet && opener && typeof sheet.showModal === "function") {
    opener.hidden = false;
    opener.addEventListener("click", openSheet);
    sheet.querySelectorAll("[data-close-sheet]").forEach(function (button) {
      button.addEventListener("click", function () { sheet.close(); });
    });
    // A click on the backdrop (outside the sheet's box) closes it too.
    sheet.addEventListener("click", function (event) {
      if (event.target === sheet) {
        var r = sheet.getBoundingClientRect();
        var inside = event.clientX >= r.left && event.clientX <= r.right && event.clientY >= r.top && event.clientY <= r.bottom;
        if (!inside) { sheet.close(); }
      }
    });
    sheet.addEventListener("close", function () {
      var back = returnTo && document.contains(returnTo) ? returnTo : (current || opener);
      if (back && back.focus) { back.focus({ preventScroll: true }); }
    });
  }

  // ------------------------------------------------------------- the keys
  function typing(target) {
    if (!target || !target.closest) { return false; }
    if (target.isContentEditable) { return true; }
    return Boolean(target.closest("input, textarea, select, [contenteditable], dialog"));
  }
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target;
    if (sheet && sheet.open) { return; }  // the dialog handles its own keys (Esc closes)
    // Esc in a line's field: back to the line, so j/k go on from there.
    if (event.key === "Escape" && target.matches && target.matches("#g703 tbody input")) {
      var row = target.closest("tr");
      event.preventDefault();
      select(row, true);
      return;
    }
    if (typing(target)) { return; }
    var onRow = target.matches && target.matches("#g703 tbody tr");
    var handled = true;
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "ArrowDown": if (onRow) { move(1); } else { handled = false; } break;
      case "ArrowUp": if (onRow) { move(-1); } else { handled = false; } break;
      case "Enter": if (onRow) { edit(current); } else { handled = false; } break;
      case "e": edit(current); break;
      case "a": approveAsClaimed(current); break;
      case "r": sendBack(current); break;
      case "c":
        if (toggle) { showChanged(toggle.getAttribute("aria-pressed") !== "true", true); } else { handled = false; }
        break;
      case "d": {
        var comment = decision && decision.querySelector("textarea");
        if (comment) { comment.focus(); } else { handled = false; }
        break;
      }
      case "?": if (sheet && opener && !opener.hidden) { openSheet(); } else { handled = false; } break;
      default: handled = false;
    }
    if (handled) { event.preventDefault(); }
  });
})();
