// paperwire: progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // Typeset $...$ / $$...$$ / \(...\) / \[...\] in paper text with the vendored KaTeX.
  // auto-render reads text nodes only, so escaped HTML in abstracts stays text.
  function renderMath() {
    if (typeof window.renderMathInElement !== "function") return;
    var opts = {
      delimiters: [
        { left: "$$", right: "$$", display: true },
        { left: "\\[", right: "\\]", display: true },
        { left: "$", right: "$", display: false },
        { left: "\\(", right: "\\)", display: false }
      ],
      // An undefined macro ($\JJ$) shows its source in the text colour, not KaTeX's red.
      throwOnError: false,
      errorColor: "inherit",
      // latex.py puts a lone or escaped "$" in span.nomath so it never pairs with another.
      ignoredClasses: ["nomath"],
      trust: false,
      strict: "ignore",
      maxExpand: 200
    };
    document.querySelectorAll(".math-text").forEach(function (el) {
      try { window.renderMathInElement(el, opts); } catch (e) { /* leave the source text */ }
    });
    document.documentElement.classList.add("math-ready");
  }

  // Upvote without a page reload; falls back to the plain form post on any error.
  function enhanceVotes() {
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      if (!form.classList || !form.classList.contains("vote-form") || !window.fetch) return;
      var btn = form.querySelector(".vote-btn");
      var action = form.querySelector('input[name="action"]');
      var token = form.querySelector('input[name="csrf_token"]');
      if (!btn || !action || !token) return;
      ev.preventDefault();
      var up = action.value !== "down";
      fetch("/api/v1/papers/" + btn.getAttribute("data-paper") + "/upvote", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": token.value },
        body: JSON.stringify({ up: up })
      }).then(function (r) {
        if (!r.ok) throw new Error("vote failed: " + r.status);
        return r.json();
      }).then(function (data) {
        btn.querySelector(".count").textContent = data.upvotes;
        btn.setAttribute("aria-pressed", data.voted ? "true" : "false");
        btn.title = data.voted ? "Remove your upvote" : "Upvote";
        action.value = data.voted ? "down" : "up";
        form.parentNode.classList.toggle("voted", data.voted);
        var total = document.querySelector(".vote-total");
        if (total && document.querySelector(".paper-head") && document.querySelector(".paper-head").contains(form)) {
          total.textContent = data.upvotes;
        }
      }).catch(function () { form.submit(); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { renderMath(); enhanceVotes(); });
  } else { renderMath(); enhanceVotes(); }
})();
