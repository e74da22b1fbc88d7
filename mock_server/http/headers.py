"""Response headers that keep user-supplied files inert when the fake serves them back (uploads)."""

from __future__ import annotations

from urllib.parse import quote

# Types a browser would render as a page (and run scripts in) if they were shown inline from the fake's origin.
ACTIVE_TYPES = ("text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml")


def active(mime: str) -> bool:
    main = mime.split(";", 1)[0].strip().lower()
    return main in ACTIVE_TYPES or main.endswith("+xml")


def download_headers(mime: str, filename: str) -> dict[str, str]:
    """``nosniff`` always (the browser must trust the declared type, not guess a script from the bytes); for HTML,
    SVG and XML also ``Content-Disposition: attachment``, so an upload cannot become a page on the fake's origin."""
    headers = {"X-Content-Type-Options": "nosniff"}
    if active(mime):
        headers["Content-Disposition"] = content_disposition(filename)
    return headers


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact name as RFC 5987 ``filename*``; neither can break
    out of the header (quotes, backslashes, control characters and non-ASCII are replaced or percent-encoded)."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)[:200] or "download"
    exact = quote(filename.encode("utf-8", "surrogatepass"), safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"
