// PurgeCSS settings for scripts/trim_css.sh (issue 16 item 4: only the CSS a page uses).
// Content: every template, our scripts, and the Python that writes class names
// (status badges, flash categories, cards). Safelist: the classes Bootstrap's
// JavaScript and ours add at runtime, and the ones built from a variable.
module.exports = {
  content: [
    "templates/**/*.html",
    "portal/static/*.js",
    "portal/**/*.py",
  ],
  css: [process.env.BOOTSTRAP_CSS],
  output: process.env.TRIMMED_CSS,
  variables: false, // keep every --bs-* custom property: components read them
  keyframes: true, // drop animations no kept rule names
  fontFace: true,
  safelist: {
    standard: [
      "show", "showing", "hiding", "fade", "collapse", "collapsing", "collapsed",
      "active", "disabled", "is-invalid", "is-valid", "was-validated",
      "needs-validation", "alert-dismissible", "visually-hidden-focusable",
      /^modal/, /^dropdown/, /^tooltip/, /^bs-tooltip/, /^popover/, /^bs-popover/,
      /^offcanvas/, /^toast/,
      // Built from a variable: alert-{{ category }}, text-bg-{colour},
      // text-/border-{{ colour }} on the dashboard cards.
      /^alert-/, /^text-bg-/, /^border-(primary|secondary|success|danger|warning|info|light|dark)/,
      /^text-(primary|secondary|success|danger|warning|info|light|dark)/,
      /^table-(primary|secondary|success|danger|warning|info|light|dark)/,
    ],
    deep: [/^modal/, /^dropdown/, /^tooltip/, /^was-validated/],
    greedy: [/is-invalid/, /is-valid/, /was-validated/],
  },
};
