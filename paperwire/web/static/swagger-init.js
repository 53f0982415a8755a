// Initialises the vendored Swagger UI at /docs (kept out of the HTML: the CSP forbids inline script).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
