"""The reading room's WSGI application: routing, sign-in, CSRF, rendering.

Each page is a function of a `Page` (the request, a database session, the running config)
returning a template and its variables, or a response. Jinja2 autoescapes everything;
text from the web is never part of a template's source."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import (
    Forbidden,
    HTTPException,
    InternalServerError,
    NotFound,
)
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from crawler.config import Config
from crawler.daemon.web import feeds, filters
from crawler.daemon.web.access import HEADERS, Access, local_path
from crawler.daemon.web.pages import alerts, articles, query, sources, stories, today, topics

log = logging.getLogger(__name__)

STATIC = {"style.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
Handler = Callable[["Page"], "Response | tuple[str, dict[str, Any]]"]

GET = ["GET"]  # and HEAD, which werkzeug adds
ROUTES = Map([
    Rule("/", endpoint=today.page, methods=GET),
    Rule("/topics/<slug:name>.<any(atom, json):kind>", endpoint=feeds.topic_feed, methods=GET),
    Rule("/articles/<int:id>", endpoint=articles.page, methods=GET),
    Rule("/query", endpoint=query.page, methods=GET),
    Rule("/sources", endpoint=sources.page, methods=GET),
    Rule("/alerts", endpoint=alerts.page, methods=GET),
    Rule("/topics/<slug:name>", endpoint=topics.page, methods=GET),
    Rule("/stories/<int:id>", endpoint=stories.page, methods=GET),
    Rule("/stories/<int:id>/triage", endpoint=stories.triage, methods=["POST"]),
    Rule("/signin", endpoint="signin", methods=["GET", "POST"]),
    Rule("/signout", endpoint="signout", methods=["POST"]),
    Rule("/static/<name>", endpoint="static", methods=GET),
], converters={"slug": filters.SlugConverter}, strict_slashes=False)


@dataclass
class Page:
    """What a page is made from."""

    request: Request
    db: Session
    config: Config
    args: dict[str, Any]
    # what a page adds to its response: [(name, value, set_cookie options)]
    cookies: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def arg(self, name: str) -> Any:
        return self.args[name]


class ReadingRoom:
    """The WSGI application. `config` gives the running config at each request, so a reload
    (new topics, a new token) is seen at once."""

    def __init__(self, db: sessionmaker[Session], config: Callable[[], Config]) -> None:
        self.db, self.config = db, config
        self.templates = Environment(loader=PackageLoader("crawler.daemon.web"),
                                     autoescape=select_autoescape(default=True),
                                     undefined=StrictUndefined, trim_blocks=True,
                                     lstrip_blocks=True)
        filters.install(self.templates)
        self._access: Access | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            response = self.respond(request)
        except HTTPException as error:
            response = self.error(request, error)
        except Exception:  # noqa: BLE001 — a page that fails is a 500 page, logged
            log.exception("reading room: %s %s failed", request.method, request.path)
            response = self.error(request, InternalServerError(
                "this page failed; the log of mediawatch says why"))
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response(environ, start_response)

    @property
    def access(self) -> Access:
        web = self.config().web
        if self._access is None or (self._access.token, self._access.base_url) != \
                (web.token, web.base_url):
            self._access = Access(web.token, web.base_url)
        return self._access

    def respond(self, request: Request) -> Response:
        if not self.access.answers(request):
            raise Forbidden("this room has no web.token: it answers only at a loopback "
                              "address (127.0.0.1, [::1], localhost)")
        endpoint, args = ROUTES.bind_to_environ(request.environ).match()
        if endpoint == "static":
            return self.static(args["name"])
        if endpoint == "signin":
            return self.signin(request)
        if endpoint == "signout":
            return self.signout(request)
        if endpoint is feeds.topic_feed and self.access.check_token(request.args.get("token")):
            return self.page(request, endpoint, args)  # a feed reader's `?token=`
        if not self.access.signed_in(request):
            if request.method not in ("GET", "HEAD") or endpoint is feeds.topic_feed:
                raise Forbidden("sign in first")
            return redirect("/signin?" + urlencode({"next": request.full_path.rstrip("?")}),
                            303)
        if request.method == "POST" and not self.access.check_csrf(request):
            raise Forbidden("this form has expired or came from another site: reload the "
                            "page and try again")
        return self.page(request, endpoint, args)

    def page(self, request: Request, handler: Handler, args: dict[str, Any]) -> Response:
        with self.db() as session:
            page = Page(request, session, self.config(), args)
            made = handler(page)
            if not isinstance(made, Response):
                made = self.render(request, *made)
            for name, value, options in page.cookies:
                made.set_cookie(name, value, **options)
            return made

    def render(self, request: Request, template: str, context: dict[str, Any],
               status: int = 200) -> Response:
        access = self.access
        nonce = access.session(request)
        # no token: everyone here has a session (not on an error page, nor a foreign host)
        fresh = nonce is None and access.open and status < 400 and access.answers(request)
        if fresh:
            response = Response(status=status, mimetype="text/html")
            nonce = access.start_session(request, response)
        html = self.templates.get_template(template).render(
            request=request, csrf=access.csrf(nonce) if nonce else "",
            signed_in=nonce is not None and not access.open, **context)
        if fresh:
            response.set_data(html)
            return response
        return Response(html, status=status, mimetype="text/html")

    def signin(self, request: Request) -> Response:
        target = local_path(request.values.get("next"))
        access = self.access
        if access.open:
            return redirect(target, 303)
        if request.method == "POST":
            if access.check_token(request.form.get("token")):
                response = redirect(target, 303)
                access.start_session(request, response)
                return response
            log.warning("reading room: a sign-in with a wrong token from %s",
                        request.remote_addr)
            return self.render(request, "signin.html", {"next": target, "wrong": True}, 403)
        return self.render(request, "signin.html", {"next": target, "wrong": False})

    def signout(self, request: Request) -> Response:
        if not self.access.check_csrf(request):
            raise Forbidden("this form has expired: reload the page and try again")
        response = redirect("/signin", 303)
        self.access.end_session(request, response)
        return response

    def static(self, name: str) -> Response:
        if name not in STATIC:
            raise NotFound()
        body = resources.files("crawler.daemon.web").joinpath("static", name).read_bytes()
        return Response(body, content_type=STATIC[name],
                        headers={"Cache-Control": "public, max-age=3600"})

    def error(self, request: Request, error: HTTPException) -> Response:
        code = error.code or 500
        if request.path.endswith((".json", ".atom")) or request.accept_mimetypes.best == \
                "application/json":
            return Response(json.dumps({"error": error.description}) + "\n", code,
                            mimetype="application/json")
        return self.render(request, "error.html", {"code": code, "title": error.name,
                                                   "message": error.description}, code)
