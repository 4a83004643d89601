// /api/docs: Swagger UI (served from this package, never a CDN) over the UI's OpenAPI.
window.SwaggerUIBundle({ url: "/api/openapi.json", dom_id: "#swagger", deepLinking: true });
