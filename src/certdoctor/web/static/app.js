// certdoctor watch dashboard: the little JavaScript the pages need (no inline script: the CSP forbids it).
// Copy-PEM buttons: <button class="copy" data-copy="ID"> copies the text of the element with that id.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.copy[data-copy]") : null;
    if (!button) {
      return;
    }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) {
      return;
    }
    var text = source.textContent;
    var done = function () {
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = "Copy PEM"; }, 2000);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(source); });
    } else {
      selectText(source);
    }
  });
  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  // the diagnosis fragment: no longer busy once htmx has swapped it in
  document.addEventListener("htmx:afterSwap", function (event) {
    var loaded = document.querySelector("#diagnosis[data-loaded]");
    if (loaded) {
      loaded.removeAttribute("aria-busy");
    }
  });
})();
