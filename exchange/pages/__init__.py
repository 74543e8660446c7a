"""The server-rendered pages (dashboard, trading page, sign-up): thin views that gather a page's
first paint; the page's scripts take it from there over the REST API and the WebSockets."""
