// CartResQ merchant app: small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // Inside Shopify admin, App Bridge's fetch carries the session token; a plain form post would not.
  function embedded() { return typeof window.shopify === "object" && window.shopify !== null; }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!embedded() || !(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
    event.preventDefault();
    var data = new FormData(form);
    if (event.submitter && event.submitter.name) data.append(event.submitter.name, event.submitter.value);
    fetch(form.action, { method: "POST", body: data }).then(function (r) { return r.text(); }).then(function (html) {
      document.open(); document.write(html); document.close();
    });
  });
  // Templates: the preview follows the words as they are typed.
  var form = document.getElementById("copy-form");
  if (!form || !window.fetch) return;
  var timer = null;
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var data = new FormData(form);
      fetch(form.dataset.preview, { method: "POST", body: data, credentials: "same-origin",
                                     headers: { "X-CSRFToken": data.get("csrf_token") } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (shown) {
          if (!shown) return;
          document.getElementById("preview-frame").srcdoc = shown.html;
          document.getElementById("preview-subject").textContent = shown.subject;
          document.getElementById("preview-sms").textContent = shown.sms;
        });
    }, 400);
  });
})();
