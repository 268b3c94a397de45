// nudge dashboard: small progressive enhancements. Every feature works without this file.
(function () {
  "use strict";
  // Selects marked js-autosubmit-field (and whole forms marked js-autosubmit) submit on change.
  document.querySelectorAll(".js-autosubmit select, select.js-autosubmit-field").forEach(function (sel) {
    sel.addEventListener("change", function () { if (sel.form) sel.form.submit(); });
  });
  // Attribution model tabs switch panels in place (the links reload the page without JS).
  var tabs = document.querySelectorAll(".tabs a[data-model]");
  tabs.forEach(function (tab) {
    tab.addEventListener("click", function (ev) {
      var model = tab.getAttribute("data-model");
      var panel = document.querySelector('.attr-panel[data-model="' + model + '"]');
      if (!panel) return;
      ev.preventDefault();
      document.querySelectorAll(".attr-panel").forEach(function (p) { p.hidden = p !== panel; });
      tabs.forEach(function (t) {
        var on = t === tab;
        t.classList.toggle("active", on);
        if (on) t.setAttribute("aria-current", "true"); else t.removeAttribute("aria-current");
      });
      if (window.history && history.replaceState) history.replaceState(null, "", tab.getAttribute("href"));
    });
  });
  // A custom range edits the dates: the preset highlight no longer applies.
  ["from", "to"].forEach(function (id) {
    var el = document.getElementById(id);
    if (el) el.addEventListener("change", function () {
      document.querySelectorAll(".presets .seg").forEach(function (s) { s.classList.remove("active"); s.removeAttribute("aria-current"); });
    });
  });
})();
