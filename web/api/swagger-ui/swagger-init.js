// Starts Swagger UI on the spec URL the page names. A file of its own, so the
// Content-Security-Policy needs no inline script.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: root.dataset.url, domNode: root, deepLinking: true });
});
