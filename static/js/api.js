// The REST API with the session cookie and the CSRF token. Every failure is the API's one error
// format {"error": {status, code, field, message}} (or a network error in the same shape).

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function api(method, path, body) {
  const options = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  if (method !== "GET") options.headers["X-CSRFToken"] = csrfToken();
  let response;
  try {
    response = await fetch(`/api/v1/${path}`, options);
  } catch {
    return { ok: false, status: 0, error: { code: "network", field: null, message: "The server cannot be reached. Check your connection." } };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.ok) return { ok: true, status: response.status, data };
  const error = data?.error || { code: "http_" + response.status, field: null, message: `The server answered ${response.status}.` };
  return { ok: false, status: response.status, error };
}
