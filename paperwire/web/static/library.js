// paperwire library: Save buttons toggle in place, with an "Undo" toast.
// Without this file the same buttons are plain form posts (CSRF token included).
(function () {
  "use strict";

  var toast = null, toastTimer = null;

  function post(url, token, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
      body: JSON.stringify(body)
    }).then(function (r) {
      if (!r.ok) throw new Error("library request failed: " + r.status);
      return r.json();
    });
  }

  function paint(form, saved) {
    var btn = form.querySelector(".save-btn");
    var action = form.querySelector('input[name="action"]');
    btn.textContent = saved ? "Saved" : "Save";
    btn.classList.toggle("saved", saved);
    btn.setAttribute("aria-pressed", saved ? "true" : "false");
    btn.title = saved ? "Remove from your library" : "Save to your library";
    action.value = saved ? "unsave" : "save";
  }

  function showToast(message, undo) {
    if (!toast) {
      toast = document.createElement("div");
      toast.className = "lib-toast";
      toast.setAttribute("role", "status");
      toast.setAttribute("aria-live", "polite");
      document.body.appendChild(toast);
    }
    toast.textContent = "";
    var text = document.createElement("span");
    text.textContent = message;  // textContent: never parsed as HTML
    toast.appendChild(text);
    if (undo) {
      var btn = document.createElement("button");
      btn.type = "button";
      btn.className = "linkish lib-undo";
      btn.textContent = "Undo";
      btn.addEventListener("click", function () { hideToast(); undo(); });
      toast.appendChild(btn);
    }
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(hideToast, 8000);
  }

  function hideToast() { if (toast) toast.hidden = true; }

  function toggle(form, save, withUndo) {
    var token = form.querySelector('input[name="csrf_token"]').value;
    var paper = form.querySelector('input[name="paper"]').value;
    return post("/api/v1/library/save", token, { paper: paper, saved: save }).then(function (data) {
      paint(form, data.saved);
      document.querySelectorAll(".save-form").forEach(function (other) {
        var p = other.querySelector('input[name="paper"]');
        if (other !== form && p && p.value === paper) paint(other, data.saved);
      });
      if (withUndo) {
        showToast(data.saved ? "Saved to your library." : "Removed from your library.",
                  function () { toggle(form, !data.saved, false); });
      } else {
        showToast(data.saved ? "Saved again." : "Removed again.", null);
      }
    });
  }

  function init() {
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      if (!form.classList || !form.classList.contains("save-form") || !window.fetch) return;
      var action = form.querySelector('input[name="action"]');
      if (!action || !form.querySelector('input[name="csrf_token"]')) return;
      ev.preventDefault();
      toggle(form, action.value !== "unsave", true).catch(function () { form.submit(); });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
