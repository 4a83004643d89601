// /api/docs: Swagger UI (served from this package, never a CDN) over the UI's OpenAPI; no
// online validator badge (it would call swagger.io).
window.SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger",
  deepLinking: true,
  validatorUrl: null,
});
